"""Keystroke traces for `bench latency`: a real file, pre-filled except for a region typed key by key.

A trace is JSON::

    {"version": 1, "name": "textwrap.py", "language": "python", "source": "...", "seed": 0,
     "initial_text": "<the file without the region>", "cursor": <code-point offset where typing starts>,
     "events": [{"delay_ms": 143, "text": "m"}, ...]}

Each event is one keystroke: after `delay_ms` of quiet, `text` is inserted at the cursor and the
cursor moves past it. Enter is one event inserting "\\n" plus the next line's indentation (the
editor's auto-indent). Replaying every event over `initial_text` gives the original file back, so
the cursor always has the rest of the file (real code) after it.

`make_trace` types whole lines (at least `keystrokes` keys when the body is long enough) of one function body (after its docstring) at human speed: 60–200 ms
between keys, a longer pause after some words (250–700 ms) and before most line ends (400–1,200 ms),
all from a seeded `random.Random`, so the same source, function, length and seed give the same trace.
"""

from __future__ import annotations

import ast
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path


TRACE_VERSION = 1
DEFAULT_SOURCE_MODULE = "textwrap"
DEFAULT_FUNCTION = "dedent"
DEFAULT_KEYSTROKES = 80
DEFAULT_TRACE_FILE = "default_trace.json"  # package data, made by `codegen-lsp bench make-trace --default`

WORD_END = set(" ,.:()[]=")


class TraceError(ValueError):
    pass


@dataclass(frozen=True)
class Keystroke:
    index: int
    delay_ms: float  # quiet time before this key
    text: str
    offset: int  # code-point offset of the cursor before the key
    pause_after_ms: float  # quiet time after it (the next key's delay; infinite after the last)


def stdlib_path(module: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise TraceError(f"{module}: not a pure-Python standard library module")
    return Path(spec.origin)


def _split_keys(typed: str) -> list[str]:
    """One key per character; a newline and the indentation after it are one key (Enter + auto-indent)."""
    return re.findall(r"\n[ \t]*|.", typed, flags=re.S)


def _region(text: str, function: str | None, keystrokes: int) -> tuple[int, int]:
    """Code-point [start, end) of the typed region: whole lines of a function body after its docstring,
    starting after the first line's indentation, ending at a line end (before its newline)."""
    def is_docstring(node: ast.stmt) -> bool:
        return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)

    tree = ast.parse(text)
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and (function is None or n.name == function) and any(not is_docstring(s) for s in n.body)]
    if not functions:
        raise TraceError(f"no function {function!r} with code in its body" if function
                         else "no function with code in its body")
    node = functions[0]
    first = node.body[1] if is_docstring(node.body[0]) else node.body[0]
    lines = text.splitlines(keepends=True)
    line_starts = [0]
    for line in lines:
        line_starts.append(line_starts[-1] + len(line))
    start = line_starts[first.lineno - 1] + first.col_offset
    last_line = (node.end_lineno or first.lineno) - 1
    end, row = start, first.lineno - 1
    while row <= last_line:
        end = line_starts[row] + len(lines[row].rstrip("\r\n"))
        if len(_split_keys(text[start:end])) >= keystrokes:
            break
        row += 1
    if row > last_line:  # the whole rest of the body; still leaves the rest of the file after the cursor
        end = line_starts[last_line] + len(lines[last_line].rstrip("\r\n"))
    return start, end


def make_trace(source: Path | None = None, function: str | None = DEFAULT_FUNCTION,
               keystrokes: int = DEFAULT_KEYSTROKES, seed: int = 0) -> dict:
    path = source or stdlib_path(DEFAULT_SOURCE_MODULE)
    text = path.read_text(encoding="utf-8")
    start, end = _region(text, function, keystrokes)
    keys = _split_keys(text[start:end])  # whole lines: at least `keystrokes` keys where the body allows
    rng = random.Random(seed)
    events = []
    for i, key in enumerate(keys):
        delay = rng.uniform(60, 200)
        previous = keys[i - 1] if i else ""
        if key.startswith("\n"):
            delay += rng.uniform(400, 1200) if rng.random() < 0.8 else 0.0
        elif previous and previous[-1] in WORD_END and rng.random() < 0.4:
            delay += rng.uniform(250, 700)
        events.append({"delay_ms": round(delay, 1), "text": key})
    return {"version": TRACE_VERSION, "name": path.name, "language": "python", "source": str(path),
            "function": function, "seed": seed, "initial_text": text[:start] + text[end:], "cursor": start,
            "events": events}


def write_trace(trace: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(trace, indent=0) + "\n", encoding="utf-8")


def default_trace_path() -> Path:
    return Path(__file__).with_name(DEFAULT_TRACE_FILE)


def default_trace() -> dict:
    return json.loads(default_trace_path().read_text(encoding="utf-8"))


def load_trace(path: Path | None) -> dict:
    if path is None:
        trace = default_trace()
    else:
        try:
            trace = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TraceError(f"{path}: file not found") from None
        except json.JSONDecodeError as exc:
            raise TraceError(f"{path}: not JSON ({exc})") from None
    if not isinstance(trace, dict) or trace.get("version") != TRACE_VERSION or not trace.get("events"):
        raise TraceError(f"{path or DEFAULT_TRACE_FILE}: not a version-{TRACE_VERSION} trace with events")
    if not 0 <= trace["cursor"] <= len(trace["initial_text"]):
        raise TraceError(f"{path}: cursor outside the text")
    return trace


def limit_trace(trace: dict, keystrokes: int | None) -> dict:
    """The first `keystrokes` events (the rest of the region is left out of the file, as if not typed yet)."""
    if keystrokes is None or keystrokes >= len(trace["events"]):
        return trace
    return {**trace, "events": trace["events"][:keystrokes]}


def keystrokes(trace: dict) -> list[Keystroke]:
    events = trace["events"]
    out, offset = [], trace["cursor"]
    for i, event in enumerate(events):
        after = events[i + 1]["delay_ms"] if i + 1 < len(events) else float("inf")
        out.append(Keystroke(i, float(event["delay_ms"]), event["text"], offset, float(after)))
        offset += len(event["text"])
    return out


def text_after(trace: dict, n: int) -> str:
    """The document after the first `n` keys."""
    cursor = trace["cursor"]
    typed = "".join(e["text"] for e in trace["events"][:n])
    return trace["initial_text"][:cursor] + typed + trace["initial_text"][cursor:]


def utf16_position(text: str, offset: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset), len(text[line_start:offset].encode("utf-16-le")) // 2
