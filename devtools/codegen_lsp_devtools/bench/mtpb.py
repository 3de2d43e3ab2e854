"""`codegen-lsp bench mtpb`: the Multi-Turn Programming Benchmark through the server.

Each problem and test input is rendered as a file of comments (one per turn), synthesized by the
server's own "Synthesize from comments" code action over LSP, and the program is executed in the
sandbox while the next one is synthesized. The paper's sampling (temperature 0.2, top-p 0.95, a
per-turn budget of `max_gen_length`) unless `greedy`.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from lsprotocol import types
from tqdm import tqdm

from codegen_lsp.headless import ready_session, stop_session, synthesize_in_session
from .mtpb_data import Problem, load_problems, render_file
from .mtpb_score import ScoredCase, build_report, score_program, write_report

PAPER_TEMPERATURE = 0.2
PAPER_TOP_P = 0.95
MAX_TURN_TOKENS = 2048  # the setting's upper bound; single-turn budgets are capped here


@dataclass(frozen=True)
class MtpbOptions:
    model: Path | None = None  # None: the server's default model
    data: Path | None = None
    limit: int | None = None
    samples: int = 1
    greedy: bool = False
    single_turn: bool = False
    out_dir: Path = Path("bench-results")
    jobs: int = 2  # sandboxed executions running beside synthesis
    timeout_s: float = 20.0
    threads: int | None = None
    progress: bool = True

    @property
    def stem(self) -> str:
        return "mtpb-single-turn" if self.single_turn else "mtpb"


def turn_budget(problem: Problem, single_turn: bool) -> int:
    """Tokens per turn: the problem's `max_gen_length`; one turn holding all of them gets their sum."""
    budget = problem.max_gen_length * (len(problem.prompts) if single_turn else 1)
    return min(budget, MAX_TURN_TOKENS)


def _server_options(options: MtpbOptions) -> dict:
    settings: dict = {"synthesisTemperature": 0.0 if options.greedy else PAPER_TEMPERATURE, "topP": PAPER_TOP_P,
                      "synthesisTurnTimeoutMs": 120000}
    if options.model is not None:
        settings["model"] = str(options.model)
    if options.threads:
        settings["threads"] = options.threads
    return settings


async def _synthesize_all(options: MtpbOptions, problems: list[Problem], workdir: Path,
                          on_program) -> None:
    """Synthesize every (problem, input, sample) in order; hand each program to `on_program`."""
    # Per-case messages ("nothing to insert ...") would drown the progress bar; the report has the outcomes.
    client = await ready_session(workdir, _server_options(options), show_messages=False)
    try:
        budget = None
        for problem in problems:
            if turn_budget(problem, options.single_turn) != budget:
                budget = turn_budget(problem, options.single_turn)
                client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
                    settings={"codegenLsp": {"synthesisMaxTokens": budget}}))
            for index in range(problem.case_count):
                for sample in range(options.samples):
                    text = render_file(problem, index, options.single_turn)
                    uri = (workdir / f"mtpb_{problem.id}_{index}_{sample}.py").as_uri()
                    started = time.perf_counter()
                    program = await synthesize_in_session(client, uri, text, "python")
                    on_program(problem, index, sample, program or text, time.perf_counter() - started)
    finally:
        await stop_session(client)


def run_mtpb(options: MtpbOptions) -> dict:
    """Run the benchmark; write `<stem>.json` and `<stem>.md` under `out_dir`; return the report."""
    problems = load_problems(options.data)
    if options.limit is not None:
        problems = problems[: options.limit]
    total = sum(p.case_count for p in problems) * options.samples
    started = time.perf_counter()
    futures: list[Future[ScoredCase]] = []
    with ThreadPoolExecutor(max_workers=options.jobs) as pool, \
            tqdm(total=total, desc="mtpb", unit="case", disable=not options.progress, file=sys.stderr) as bar:
        def on_program(problem: Problem, index: int, sample: int, program: str, seconds: float) -> None:
            future = pool.submit(score_program, problem, index, program, sample, options.timeout_s, round(seconds, 4))
            future.add_done_callback(lambda _: bar.update(1))
            futures.append(future)

        with tempfile.TemporaryDirectory(prefix="codegen-lsp-mtpb-") as workdir:
            asyncio.run(_synthesize_all(options, problems, Path(workdir), on_program))
        cases = [f.result() for f in futures]
    meta = {
        "benchmark": "MTPB (CodeGen paper), through the server's Synthesize from comments code action",
        "mode": "single-turn" if options.single_turn else "multi-turn",
        "model": str(options.model) if options.model else "default model",
        "sampling": "greedy" if options.greedy else f"temperature {PAPER_TEMPERATURE}, top-p {PAPER_TOP_P}",
        "samples": options.samples,
        "problems": len(problems),
        "wall_seconds": round(time.perf_counter() - started, 2),
        "synthesis_seconds": round(sum(c.synth_seconds for c in cases), 2),
        "command": "codegen-lsp " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("codegen-lsp") else None,
    }
    report = build_report(problems, cases, meta)
    report["files"] = {"json": str(options.out_dir / f"{options.stem}.json"),
                       "markdown": str(options.out_dir / f"{options.stem}.md")}
    write_report(report, options.out_dir, options.stem)
    return report
