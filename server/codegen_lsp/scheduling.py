"""When to start the model: an adaptive debounce from the user's typing rhythm and the model's speed.

Starting a generation that the next keystroke cancels wastes a chunk of prompt evaluation and delays
the request that matters. When the model answers faster than the user types, there is nothing to wait
for; when it is slower, waiting about one typical inter-key interval lets a burst of typing finish
first. Pure data: the server owns one `TypingRhythm`.
"""

from __future__ import annotations

import statistics
from collections import deque

KEEP_INTERVALS = 16  # recent inter-key intervals per document
BURST_GAP_S = 1.5  # a longer gap starts a new burst: it is a pause, not a typing interval
LATENCY_SMOOTHING = 0.3  # weight of the newest model latency in the moving average


class TypingRhythm:
    def __init__(self) -> None:
        self._last_edit: dict[str, float] = {}
        self._intervals: dict[str, deque[float]] = {}
        self.model_latency_s: float | None = None

    def edited(self, uri: str, now: float) -> None:
        last = self._last_edit.get(uri)
        self._last_edit[uri] = now
        if last is not None and 0 < now - last < BURST_GAP_S:
            self._intervals.setdefault(uri, deque(maxlen=KEEP_INTERVALS)).append(now - last)

    def answered(self, seconds: float) -> None:
        """A generation's wall time (prompt + decoding), for the moving average."""
        if self.model_latency_s is None:
            self.model_latency_s = seconds
        else:
            self.model_latency_s += LATENCY_SMOOTHING * (seconds - self.model_latency_s)

    def forget(self, uri: str) -> None:
        self._last_edit.pop(uri, None)
        self._intervals.pop(uri, None)

    def __contains__(self, uri: object) -> bool:
        """Whether anything of `uri`'s typing is kept (only while it is open: features/sync.py)."""
        return uri in self._last_edit or uri in self._intervals

    def delay(self, uri: str, floor_s: float, cap_s: float) -> float:
        return adaptive_delay(list(self._intervals.get(uri, ())), self.model_latency_s, floor_s, cap_s)


def adaptive_delay(intervals: list[float], model_latency_s: float | None, floor_s: float, cap_s: float) -> float:
    """Seconds to wait before generating: `floor_s` unless the user types faster than the model answers,
    then the median inter-key interval (plus a quarter, so that a typical next key lands inside it),
    never more than `cap_s`."""
    if len(intervals) < 3 or model_latency_s is None:
        return floor_s
    typical = statistics.median(intervals)
    if model_latency_s <= typical:
        return floor_s
    return max(floor_s, min(cap_s, typical * 1.25))
