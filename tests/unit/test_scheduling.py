"""The adaptive debounce: wait only while the user types faster than the model answers."""

from __future__ import annotations

import pytest

from codegen_lsp.scheduling import TypingRhythm, adaptive_delay


def test_no_rhythm_or_no_latency_yet_means_the_floor() -> None:
    assert adaptive_delay([], 2.0, 0.05, 0.4) == 0.05
    assert adaptive_delay([0.1, 0.1], 2.0, 0.05, 0.4) == 0.05  # too few intervals to call it a rhythm
    assert adaptive_delay([0.1, 0.1, 0.1], None, 0.0, 0.4) == 0.0


def test_a_model_faster_than_typing_is_not_delayed() -> None:
    assert adaptive_delay([0.2, 0.25, 0.3], 0.1, 0.0, 0.4) == 0.0


def test_a_model_slower_than_typing_waits_about_one_interval_capped() -> None:
    assert adaptive_delay([0.1, 0.12, 0.14], 0.8, 0.0, 0.4) == pytest.approx(0.15)
    assert adaptive_delay([0.3, 0.35, 0.4], 2.0, 0.0, 0.4) == 0.4
    assert adaptive_delay([0.01, 0.01, 0.01], 2.0, 0.05, 0.4) == 0.05  # never below the floor


def test_rhythm_ignores_pauses_and_tracks_latency_per_document() -> None:
    rhythm = TypingRhythm()
    for t in (0.0, 0.1, 0.2, 0.3, 5.0, 5.1):  # the 4.7 s pause is not an interval
        rhythm.edited("a", t)
    rhythm.answered(1.0)
    rhythm.answered(0.0)
    assert rhythm.model_latency_s == pytest.approx(0.7)
    assert rhythm.delay("a", 0.0, 0.4) == pytest.approx(0.125)
    assert rhythm.delay("b", 0.0, 0.4) == 0.0  # another document has no rhythm yet
    rhythm.forget("a")
    assert rhythm.delay("a", 0.0, 0.4) == 0.0
