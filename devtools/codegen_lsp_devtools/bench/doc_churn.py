"""`bench doc-churn`: does the server give back what documents cost once they are closed?

The real server (`python -m codegen_lsp serve`), spoken to with bench/load.py's RawClient. Its RSS
(/proc/PID/status VmRSS; the model lives in the engine process, not in this one) is read once the model
is ready and a first document was opened, edited and closed and one didChange for a URI never opened
was answered (one-time allocations done), then again after the churn: 200 documents opened and closed
(a sliding window of WINDOW open at once, sizes from 1 KB to 100 KB), DID_CHANGES didChange
notifications for URIs never opened, everything closed, a request answered (so every notification
before it was handled) and SETTLE_S waited. Target: the two within TARGET_MB. Then the same churn
once more with other URIs, and RSS again: growth that repeats per round is kept per document or URI;
a first round's growth that does not repeat is the allocator keeping the round's peak (py-tree-sitter
allocates syntax-tree nodes through Python's small-object allocator, whose arenas go back to the
system only when wholly empty).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types

from .load import RawClient, _vm_rss_kib

DOCUMENTS = 200
DID_CHANGES = 2000
WINDOW = 10  # documents open at once during the churn
BIG_EVERY = 10  # every tenth document is BIG_BYTES
BIG_BYTES = 100_000
SETTLE_S = 2.0
TARGET_MB = 10  # megabytes (10^6 bytes)


def document_text(i: int, size: int) -> str:
    """Python-looking text of about `size` bytes, different for each `i`."""
    lines, total, n = [], 0, 0
    while total < size:
        line = (f"def f{i}_{n}(x, y):\n    return x * {n} + y - {i}\n\n" if n % 3 else
                f"# document {i}, block {n}: some prose to vary the line lengths a little\n")
        lines.append(line)
        total += len(line)
        n += 1
    return "".join(lines)[:size]


def _sizes(seed: int) -> list[int]:
    rng = random.Random(seed)
    return [BIG_BYTES if i % BIG_EVERY == BIG_EVERY - 1 else rng.randint(1_000, 20_000) for i in range(DOCUMENTS)]


async def run_doc_churn(model: Path | None, seed: int = 0) -> dict:
    with tempfile.TemporaryDirectory() as workdir:
        root = Path(workdir)
        # stderr drained: DID_CHANGES warnings would fill a pipe nobody reads (bench load is about that)
        client = await RawClient.start([sys.executable, "-m", "codegen_lsp", "serve", "--log-level", "info"],
                                       drain_stderr=True)
        try:
            return await _drive(client, model, root, seed)
        finally:
            await client.close()


async def _drive(client: RawClient, model: Path | None, root: Path, seed: int) -> dict:
    options: dict = {"threads": 1}
    if model is not None:
        options["model"] = str(model)
    _, init = client.request(types.INITIALIZE, types.InitializeParams(
        capabilities=types.ClientCapabilities(), root_uri=root.as_uri(), initialization_options=options))
    await asyncio.wait_for(init, 60)
    client.notify(types.INITIALIZED, types.InitializedParams())
    status = await client.wait_status(("ready", "error"), 300)
    if status.get("state") != "ready":
        raise RuntimeError(f"the model did not load: {status.get('detail')}")
    pid = client.process.pid

    def open_doc(uri: str, text: str) -> None:
        client.notify(types.TEXT_DOCUMENT_DID_OPEN, types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))

    def close_doc(uri: str) -> None:
        client.notify(types.TEXT_DOCUMENT_DID_CLOSE,
                      types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))

    def change(uri: str, version: int) -> None:
        at = types.Position(line=0, character=0)
        client.notify(types.TEXT_DOCUMENT_DID_CHANGE, types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=at, end=at),
                                                                    text="# edit\n")]))

    async def handled() -> None:
        """Every notification sent before this request was handled when it is answered (one stream, in order)."""
        _, future = client.request(types.WORKSPACE_EXECUTE_COMMAND,
                                   types.ExecuteCommandParams(command="codegen-lsp.listModels"))
        reply = await asyncio.wait_for(future, 120)
        if "error" in reply:
            raise RuntimeError(f"codegen-lsp.listModels failed: {reply['error']}")

    # One-time allocations: a document through its whole life, and a change nobody opened.
    first = (root / "first.py").as_uri()
    open_doc(first, document_text(-1, 5_000))
    change(first, 2)
    close_doc(first)
    change((root / "never_opened_warmup.py").as_uri(), 2)
    await handled()
    await asyncio.sleep(SETTLE_S)
    rss_start = _vm_rss_kib(pid)

    sizes, peak = _sizes(seed), rss_start

    async def churn(round_: int) -> float:
        """The documents opened and closed, the changes for URIs never opened, everything closed; seconds."""
        nonlocal peak
        started, open_now = time.perf_counter(), []
        for i, size in enumerate(sizes):
            uri = (root / f"r{round_}_doc{i}.py").as_uri()
            open_doc(uri, document_text(i, size))
            open_now.append(uri)
            if len(open_now) > WINDOW:
                close_doc(open_now.pop(0))
            if i % 20 == 19:
                await handled()
                peak = max(peak, _vm_rss_kib(pid))
        for n in range(DID_CHANGES):
            change((root / f"r{round_}_never_opened_{n}.py").as_uri(), 2 + n % 5)
            if n % 200 == 199:
                await handled()
        for uri in open_now:
            close_doc(uri)
        await handled()
        peak = max(peak, _vm_rss_kib(pid))
        seconds = time.perf_counter() - started
        await asyncio.sleep(SETTLE_S)
        return seconds

    churn_s = await churn(1)
    rss_end, first_peak = _vm_rss_kib(pid), peak
    # The same again with other URIs: what is kept per document or per URI grows with each round; what the
    # allocator keeps from a round's peak (freed memory it does not give back) does not.
    await churn(2)
    rss_again = _vm_rss_kib(pid)

    _, future = client.request(types.SHUTDOWN, None)
    await asyncio.wait_for(future, 30)
    client.notify(types.EXIT, None)
    await client.exited(30)
    return {"model": str(model) if model else "built-in demo model", "seed": seed, "documents": DOCUMENTS,
            "document_mib": sum(sizes) / 2**20, "big_documents": sum(s == BIG_BYTES for s in sizes),
            "did_changes_unopened": DID_CHANGES, "churn_s": churn_s, "rss_start_mib": rss_start / 1024,
            "rss_peak_mib": first_peak / 1024, "rss_end_mib": rss_end / 1024,
            "rss_diff_mib": (rss_end - rss_start) / 1024, "rss_diff_mb": (rss_end - rss_start) * 1024 / 1e6,
            "rss_second_round_mib": rss_again / 1024, "second_round_growth_mb": (rss_again - rss_end) * 1024 / 1e6,
            "target_mb": TARGET_MB,
            "server_exit": client.process.returncode}


def print_doc_churn(report: dict) -> None:
    print(f"doc-churn: {report['documents']} documents ({report['document_mib']:.1f} MiB, "
          f"{report['big_documents']} of {BIG_BYTES // 1000} KB) opened and closed, {WINDOW} open at once; "
          f"{report['did_changes_unopened']} didChange for URIs never opened ({report['model']}; "
          f"{report['churn_s']:.1f} s)")
    verdict = "within" if abs(report["rss_diff_mb"]) <= report["target_mb"] else "OVER"
    print(f"  server RSS at start {report['rss_start_mib']:.1f} MiB, peak {report['rss_peak_mib']:.1f} MiB, "
          f"at the end {report['rss_end_mib']:.1f} MiB: {report['rss_diff_mib']:+.1f} MiB = "
          f"{report['rss_diff_mb']:+.1f} MB ({verdict} the {report['target_mb']} MB target)")
    print(f"  the same churn again (other URIs): {report['rss_second_round_mib']:.1f} MiB, "
          f"{report['second_round_growth_mb']:+.1f} MB over the first round's end")


def main_sync(model: Path | None, seed: int = 0) -> dict:
    return asyncio.run(run_doc_churn(model, seed))


def command(model: Path | None, seed: int, out: Path) -> int:
    """`codegen-lsp bench doc-churn`: print, write the JSON report; exit status 1 over the target."""
    report = main_sync(model, seed)
    print_doc_churn(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")
    return 0 if abs(report["rss_diff_mb"]) <= report["target_mb"] else 1
