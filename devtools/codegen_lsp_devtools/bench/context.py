"""`bench context`: what context from other files costs per keystroke, through the real server.

Two servers run side by side on the same model: one with the other files' chunks in its prompts
(crossFileTokens as set, default 1024), one without (0). Both get the same documents (three standard
library modules, and a new file that uses them) and the same keystrokes, one didChange per key; after
each key both are asked for an inline suggestion, in alternating order, so machine noise hits both
alike. The report: per-keystroke latency (median of per-key ratios), prompt tokens and tokens
evaluated per keystroke (the KV cache keeps the chunks while typing), from one run.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from lsprotocol import types

from codegen_lsp.headless import ready_session, stop_session

from .trace import stdlib_path

OTHER_MODULES = ("textwrap", "shlex", "string")
HEAD = "import shlex\nimport textwrap\n\n\ndef format_command(words, width=40):\n    "
TYPED = "line = shlex.join(words)\n    return textwrap.fill(line, width)"


def _open(client, uri: str, text: str) -> None:
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))


async def _ask(client, uri: str, line: int, column: int, version: int) -> tuple[float, object | None]:
    started = time.perf_counter()
    await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=column),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic)))
    wall = (time.perf_counter() - started) * 1000
    stats = [s for s in client.stats if s.uri == uri and s.version == version and s.kind == "request"]  # type: ignore[attr-defined]
    return wall, (stats[-1] if stats and stats[-1].source == "model" else None)


async def run_context_bench(model: Path, keys: int, cross_file_tokens: int, threads: int | None) -> dict:
    others = {name: stdlib_path(name).read_text(encoding="utf-8") for name in OTHER_MODULES}
    with tempfile.TemporaryDirectory() as a_dir, tempfile.TemporaryDirectory() as b_dir:
        sessions = {}
        for label, root, budget in (("with", Path(a_dir), cross_file_tokens), ("without", Path(b_dir), 0)):
            options = {"model": str(model), "maxTokens": 16, "crossFileTokens": budget, "debounceMs": 0,
                       "adaptiveDebounce": False, "warmAfterMs": 0, "speculativeSuggestions": False}
            if threads:
                options["threads"] = threads
            client = await ready_session(root, options, show_messages=False)
            for name, text in others.items():
                _open(client, (root / f"{name}.py").as_uri(), text)
            uri = (root / "commands.py").as_uri()
            _open(client, uri, HEAD + "\n")
            sessions[label] = (client, uri)
        try:
            line, column = HEAD.count("\n"), len(HEAD.split("\n")[-1])
            rows = []
            for n, char in enumerate(TYPED[:keys], start=2):
                for client, uri in sessions.values():
                    client.text_document_did_change(types.DidChangeTextDocumentParams(
                        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=n),
                        content_changes=[types.TextDocumentContentChangePartial(range=types.Range(
                            start=types.Position(line=line, character=column),
                            end=types.Position(line=line, character=column)), text=char)]))
                if char == "\n":
                    line, column = line + 1, 0
                else:
                    column += 1
                order = ("with", "without") if n % 2 == 0 else ("without", "with")
                row = {}
                for label in order:
                    client, uri = sessions[label]
                    row[label] = await _ask(client, uri, line, column, n)
                rows.append(row)
        finally:
            for client, _ in sessions.values():
                await stop_session(client)
    paired = [r for r in rows if r["with"][1] is not None and r["without"][1] is not None]

    def side(label: str) -> dict:
        return {"wall_ms_p50": statistics.median(r[label][0] for r in paired),
                "prompt_tokens_p50": statistics.median(r[label][1].prompt_tokens for r in paired),
                "evaluated_tokens_p50": statistics.median(r[label][1].evaluated_prompt_tokens for r in paired),
                "engine_ms_p50": statistics.median(r[label][1].prompt_ms + r[label][1].generate_ms for r in paired)}

    return {"model": str(model), "keys": len(rows), "paired_model_calls": len(paired),
            "cross_file_tokens": cross_file_tokens, "with": side("with"), "without": side("without"),
            "wall_ms_ratio_p50": statistics.median(r["with"][0] / max(1e-6, r["without"][0]) for r in paired)}


def print_context_report(report: dict) -> None:
    print(f"model: {report['model']}; {report['keys']} keys, {report['paired_model_calls']} with a model call on "
          f"both servers; crossFileTokens {report['cross_file_tokens']} vs 0")
    for label in ("with", "without"):
        s = report[label]
        print(f"{label:>7} other files: p50 {s['wall_ms_p50']:.0f} ms per keystroke, prompt {s['prompt_tokens_p50']:.0f} "
              f"tokens, {s['evaluated_tokens_p50']:.0f} evaluated, engine {s['engine_ms_p50']:.0f} ms")
    print(f"latency ratio with/without (median of per-key ratios): {report['wall_ms_ratio_p50']:.2f}")


def main_sync(model: Path, keys: int, cross_file_tokens: int, threads: int | None) -> dict:
    return asyncio.run(run_context_bench(model, keys, cross_file_tokens, threads))
