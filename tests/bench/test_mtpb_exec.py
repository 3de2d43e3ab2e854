"""MTPB: data loading, the sandboxed executor, the paper's output comparison and the reports.

Hand-written correct and wrong programs (support/mtpb_programs.py) run through the real sandbox; the
adversarial programs use short timeouts and small memory limits so the module stays fast.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from support.mtpb_programs import HAND_PROGRAMS, KNOWN_UNPASSABLE_PROGRAMS, HandProgram, build_program

from codegen_lsp_devtools.bench.mtpb_data import (
    HEADER,
    MtpbDataError,
    Problem,
    default_data_path,
    load_problems,
    render_file,
)
from codegen_lsp_devtools.bench.mtpb_score import (
    KNOWN_UNPASSABLE,
    ScoredCase,
    build_report,
    outputs_match,
    print_summary,
    read_samples,
    run_mtpb_exec,
    score_samples,
    write_report,
)
from codegen_lsp_devtools.bench.sandbox import run_program

QUICK = 5.0  # seconds: the limit for programs that should end at once


@pytest.fixture(scope="module")
def problems() -> list[Problem]:
    try:
        return load_problems(default_data_path())
    except MtpbDataError as exc:
        pytest.skip(f"MTPB data not available: {exc}")


@pytest.fixture(scope="module")
def by_id(problems: list[Problem]) -> dict[str, Problem]:
    return {problem.id: problem for problem in problems}


def _available(program: HandProgram) -> bool:
    if program.needs is None:
        return True
    try:
        __import__(program.needs)
    except ImportError:
        return False
    return True


def _samples(by_id: dict[str, Problem], programs: tuple[HandProgram, ...]) -> list[dict]:
    """Sample 0 is the correct program, sample 1 the wrong one, for every input."""
    samples = []
    for hand in programs:
        problem = by_id[hand.problem_id]
        for index in range(len(problem.inputs)):
            samples.append({"id": problem.id, "input": index, "program": build_program(problem, index, hand.correct)})
            if hand.wrong:
                samples.append({"id": problem.id, "input": index, "sample": 1,
                                "program": build_program(problem, index, hand.wrong)})
    return samples


def _expected_passes(by_id: dict[str, Problem], programs: tuple[HandProgram, ...]) -> int:
    total = 0
    for hand in programs:
        inputs = len(by_id[hand.problem_id].inputs)
        total += sum((hand.problem_id, i) not in KNOWN_UNPASSABLE for i in range(inputs))
        total += len(hand.wrong_passes) if hand.wrong else 0
    return total


# ------------------------------------------------------------------------------------------------- data


def test_load_problems_shape(problems: list[Problem]) -> None:
    assert len(problems) == 115
    assert [p.id for p in problems] == [str(i) for i in range(1, 116)]
    assert sum(len(p.inputs) for p in problems) == 575
    assert sum(len(p.prompts) for p in problems) == 514
    categories = {}
    for p in problems:
        categories[p.category] = categories.get(p.category, 0) + 1
    assert categories == {"array": 23, "data science": 23, "math": 22, "string": 21, "algorithm": 21,
                          "dict": 3, "class": 2}
    by_id = {p.id: p for p in problems}
    assert all(by_id[str(i)].max_gen_length == 256 for i in range(39, 46))
    assert len(by_id["57"].outputs) == 6 and len(by_id["57"].inputs) == 5
    assert by_id["57"].expected(4) == 10010
    with pytest.raises(IndexError):
        by_id["57"].expected(5)


def test_turns_and_render_file(by_id: dict[str, Problem]) -> None:
    problem = by_id["2"]
    turns = problem.turns(3)
    assert turns[0] == 'Define a list of integers named "numbers" with the values [1].'
    multi = render_file(problem, 3)
    assert multi.startswith(HEADER)
    assert multi == HEADER + "".join(f"# {turn}\n\n" for turn in turns)
    single = render_file(problem, 3, single_turn=True)
    assert single == HEADER + "".join(f"# {turn}\n" for turn in turns) + "\n"
    # Problem 46 escapes its format braces; problem 17's turn spans lines that are already comments.
    assert by_id["46"].turns(0)[-1].endswith('Use the format "{:.1f} {:.1f}".')
    rendered = render_file(by_id["17"], 0)
    assert "\n# str(4) = 4\n" in rendered and "# # " not in rendered
    assert all(line.startswith("#") or line in ("", "import numpy as np") for line in rendered.splitlines())


def test_data_path_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEGEN_LSP_MTPB", str(tmp_path / "missing.jsonl"))
    with pytest.raises(MtpbDataError, match="CODEGEN_LSP_MTPB"):
        default_data_path()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "name": "x", "category": "math", "prompts": ["p"], "inputs": [{}], "outputs": [1]}\n'
                   "{not json\n")
    monkeypatch.setenv("CODEGEN_LSP_MTPB", str(bad))
    assert default_data_path() == bad
    with pytest.raises(MtpbDataError, match=r"bad\.jsonl:2: malformed JSON"):
        load_problems()
    bad.write_text('{"id": "1", "name": "x", "category": "math", "prompts": ["{a}"], "inputs": [{}], "outputs": [1]}\n')
    with pytest.raises(MtpbDataError, match=r":1: input 0 does not fill"):
        load_problems(bad)
    with pytest.raises(MtpbDataError, match="does not exist"):
        load_problems(tmp_path / "nowhere.jsonl")


# --------------------------------------------------------------------------------------------- matching


@pytest.mark.parametrize(("value", "expected", "match"), [
    (0.1 + 0.2, 0.3, True),
    (0.3 + 2e-6, 0.3, False),
    ([0.1 + 0.2, 1], [0.3, 1], True),  # floats within 1e-6 inside lists too
    ({"a": [1.0000001]}, {"a": [1]}, True),
    (2.9, 2, True),  # int(value), as in the paper
    ("12", 12, True),
    ("abc", 12, False),  # a failed cast is a mismatch
    ([1], 1, False),
    (7, 7.0, True),
    (True, True, True),
    ("True", True, True),  # booleans compared as strings
    ("true", True, False),
    (1, True, False),
    (False, "False", True),
    (np.float64(0.5), 0.5, True),
    (np.int64(3), 3, True),
    (np.bool_(False), False, True),
    (np.array([1, 2, 3]), [1, 2, 3], True),
    (np.array([[1.0, 2.0]]), [[1, 2]], True),
    ((1, 2), [1, 2], True),  # tuple against list
    ([(1, 2), (3, 4)], [[1, 2], [3, 4]], True),
    ({1, 2, 3}, [1, 2, 3], True),
    ("abc", ["a", "b", "c"], True),  # list(str), as in the paper
    ([1, 2], [2, 1], False),
    ([False, 0], [0, False], True),  # Python's == inside lists, like the paper's list comparison
    ({1: ["a"]}, {"1": ["a"]}, True),  # dict keys compared as strings
    ({"1": ["a"]}, {"1": ["b"]}, False),
    ([[1, "a"]], {"1": "a"}, True),
    ("None", None, False),  # expected None: only None matches
    (None, None, True),
    (None, 0, False),
    ((1, 2), "(1, 2)", True),  # strings compare with str() of the value as printed
    ([1, 2], "[1, 2]", True),
    (float("nan"), 1.0, False),
])
def test_outputs_match(value: object, expected: object, match: bool) -> None:
    assert outputs_match(value, expected) is match


def test_outputs_match_uses_the_printed_text() -> None:
    # The sandbox hands over the JSON value and str() of the original; strings compare with the latter.
    assert outputs_match([1, 2], "(1, 2)", text="(1, 2)")
    assert not outputs_match([1, 2], "[1, 2]", text="(1, 2)")
    assert outputs_match(True, True, text="True")


def test_known_unpassable_cases() -> None:
    assert len(KNOWN_UNPASSABLE) == 7
    assert KNOWN_UNPASSABLE == {("89", i) for i in range(5)} | {("41", 1), ("41", 4)}


# ---------------------------------------------------------------------------------------------- sandbox


def test_captures_last_print_and_wraps_last_expression() -> None:
    run = run_program("import numpy as np\nprint(1)\nprint([np.int64(2), (3, 4)], 'ignored')\n", timeout_s=QUICK)
    assert (run.status, run.value, run.has_value, run.text) == ("ok", [2, [3, 4]], True, "[2, (3, 4)]")
    assert "[2, (3, 4)] ignored" in run.stdout_tail
    # numpy scalars print as under the paper's numpy 1.x, also inside strings the program builds.
    built = run_program("import numpy as np\nc = np.array([-10, 10])\nprint(f'{tuple(c)}')\n", timeout_s=QUICK)
    assert built.value == "(-10, 10)"
    assert run_program("x = 20\nx + 1\n", timeout_s=QUICK).value == 21
    # Like the paper's rewrite, a final assignment has its value printed too.
    assert run_program("def f():\n    return {1: 'a'}\nresult = f()\n", timeout_s=QUICK).value == {"1": "a"}


def test_pandas_and_sklearn_import_after_the_guard() -> None:
    pytest.importorskip("pandas")
    frame = run_program("import pandas as pd\npd.DataFrame({'a': [1.5, 2.5]}).mean()\n", timeout_s=10)
    assert (frame.status, frame.value) == ("ok", [2.0]), frame
    pytest.importorskip("sklearn")
    program = ("from sklearn.linear_model import LinearRegression\nimport numpy as np\nx = np.arange(10)\n"
               "model = LinearRegression().fit(x.reshape(-1, 1), 2 * x)\nprint(round(model.predict([[4]])[0], 6))\n")
    fitted = run_program(program, timeout_s=20)
    assert (fitted.status, fitted.value) == ("ok", 8.0), fitted


def test_no_output_syntax_error_and_error_after_print() -> None:
    silent = run_program("x = 1\nfor i in range(3):\n    x += i\n", timeout_s=QUICK)
    assert (silent.status, silent.has_value) == ("no-output", False)
    bad = run_program("def f(:\n    pass\n", timeout_s=QUICK)
    assert bad.status == "error" and bad.detail.startswith("SyntaxError") and "line 1" in bad.detail
    late = run_program("print(42)\nx = [1]\nx[5]\n", timeout_s=QUICK)
    assert late.status == "error" and "IndexError" in late.detail and "line 3" in late.detail
    assert (late.has_value, late.value) == (True, 42)  # the paper compares what was printed before the error


def test_infinite_loops_are_stopped_and_the_run_goes_on(by_id: dict[str, Problem]) -> None:
    problem = by_id["73"]
    correct = build_program(problem, 0, HAND_PROGRAMS[[h.problem_id for h in HAND_PROGRAMS].index("73")].correct)
    samples = [
        {"id": "73", "input": 0, "sample": 0, "program": HEADER + "while True:\n    pass\n"},
        # Swallows the in-process timeout, so only the process-group kill can stop it.
        {"id": "73", "input": 0, "sample": 1, "program": "import time\nwhile True:\n    try:\n"
                                                          "        time.sleep(100)\n    except BaseException:\n"
                                                          "        pass\n"},
        {"id": "73", "input": 0, "sample": 2, "program": correct},
    ]
    start = time.monotonic()
    loop, stubborn, fine = score_samples([problem], samples, jobs=2, timeout_s=2.0, progress=False)
    assert (loop.status, loop.passed) == ("timeout", False) and loop.seconds < 4.0
    assert (stubborn.status, stubborn.passed) == ("timeout", False) and stubborn.seconds < 7.0
    assert "killed" in stubborn.detail
    assert fine.passed and fine.status == "ok"
    assert time.monotonic() - start < 12.0


@pytest.mark.parametrize("program", [
    "import os\nwhile True:\n    os.fork()\n",
    "import subprocess\nsubprocess.run(['sh', '-c', 'sleep 30 &'])\n",
    "import os\nos.system('sleep 30')\n",
    "import multiprocessing as mp\nmp.Process(target=print).start()\n",
    "from concurrent.futures import ProcessPoolExecutor\nProcessPoolExecutor(2).submit(print, 1).result()\n",
    "import os\nos.kill(1, 9)\n",
    "import shutil\nshutil.rmtree('/tmp')\n",
])
def test_process_creation_and_destruction_are_blocked(program: str) -> None:
    run = run_program(program, timeout_s=QUICK)
    assert run.status == "error", run
    assert "disabled in the MTPB sandbox" in run.detail, run.detail
    assert run.seconds < QUICK


@pytest.mark.parametrize("program", [
    "x = bytearray(10**11)\n",
    "x = []\nwhile True:\n    x.append(' ' * 10**7)\n",
    "import numpy as np\nx = np.ones((10**6, 10**5))\n",
])
def test_memory_is_limited(program: str) -> None:
    run = run_program(program, timeout_s=QUICK, memory_mb=512)
    assert run.status in {"error", "killed"}, run
    assert run.status == "killed" or "MemoryError" in run.detail
    assert run.seconds < QUICK + 1


def test_network_is_unreachable() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        attempts = [
            f"import socket\ns = socket.socket()\ns.connect(('127.0.0.1', {port}))\nprint('connected')\n",
            f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)\nprint('connected')\n",
            f"import _socket\ns = _socket.socket()\ns.connect(('127.0.0.1', {port}))\nprint('connected')\n",
            f"import urllib.request\nprint(urllib.request.urlopen('http://127.0.0.1:{port}/', timeout=1).read())\n",
        ]
        for program in attempts:
            run = run_program(program, timeout_s=QUICK)
            assert run.status == "error" and not run.has_value, run
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody ever connected


def test_files_stay_in_a_temporary_directory_that_is_removed() -> None:
    program = ("import os\nos.makedirs('sub', exist_ok=True)\nopen('sub/out.txt', 'w').write('x' * 100)\n"
               "print(os.path.abspath('sub/out.txt'))\n")
    run = run_program(program, timeout_s=QUICK)
    assert run.status == "ok", run
    written = Path(run.value)
    assert written.name == "out.txt" and Path.cwd() not in written.parents
    assert not written.exists() and not written.parent.parent.exists()
    big = run_program("with open('big', 'wb') as f:\n    f.write(b'x' * (100 * 1024 * 1024))\n", timeout_s=QUICK)
    assert big.status in {"error", "killed"}, big  # RLIMIT_FSIZE: 64 MiB


def test_stdout_flood_keeps_only_a_tail() -> None:
    run = run_program("while True:\n    print('x' * 1000)\n", timeout_s=1.0)
    assert run.status == "timeout" and run.value == "x" * 1000
    assert len(run.stdout_tail) <= 64 * 1024


# --------------------------------------------------------------------------------- hand-written programs


@pytest.fixture(scope="module")
def hand_programs() -> tuple[HandProgram, ...]:
    return tuple(hand for hand in HAND_PROGRAMS if _available(hand))


def test_hand_written_programs_cover_enough() -> None:
    assert len({hand.problem_id for hand in HAND_PROGRAMS}) >= 12
    assert any(hand.needs == "pandas" for hand in HAND_PROGRAMS)


@pytest.mark.parametrize("hand", HAND_PROGRAMS, ids=lambda hand: f"problem-{hand.problem_id}")
def test_hand_written_programs_through_score_samples(by_id: dict[str, Problem], hand: HandProgram) -> None:
    if hand.needs:
        pytest.importorskip(hand.needs)
    cases = score_samples(by_id.values(), _samples(by_id, (hand,)), jobs=2, timeout_s=QUICK, progress=False)
    inputs = set(range(len(by_id[hand.problem_id].inputs)))
    correct = [case for case in cases if case.sample == 0]
    assert {case.input_index for case in correct if case.passed} == inputs, [c for c in correct if not c.passed]
    wrong_passes = {case.input_index for case in cases if case.sample == 1 and case.passed}
    assert wrong_passes == hand.wrong_passes
    assert hand.wrong_passes < inputs  # every wrong program fails somewhere
    assert all(case.status == "ok" for case in cases)


def test_run_mtpb_exec_writes_reports(tmp_path: Path, by_id: dict[str, Problem],
                                      hand_programs: tuple[HandProgram, ...], capsys: pytest.CaptureFixture) -> None:
    programs = hand_programs + KNOWN_UNPASSABLE_PROGRAMS
    samples = _samples(by_id, programs)
    samples_path = tmp_path / "SAMPLES.jsonl"
    samples_path.write_text("".join(json.dumps(sample) + "\n" for sample in samples), encoding="utf-8")
    out_dir = tmp_path / "out"

    report = run_mtpb_exec(samples_path, out_dir, jobs=2, timeout_s=QUICK, progress=False, meta={"model": "hand"})

    total = len(samples)
    passed = _expected_passes(by_id, programs)
    known_scored = sum((s["id"], s["input"]) in KNOWN_UNPASSABLE for s in samples)
    assert known_scored == 7
    on_disk = json.loads((out_dir / "mtpb-exec.json").read_text(encoding="utf-8"))
    assert on_disk == json.loads(json.dumps(report))
    assert report["counts"]["cases"] == total and report["counts"]["passed"] == passed
    assert report["pass_rate"] == pytest.approx(100.0 * passed / total, abs=1e-3)
    assert report["pass_rate_excluding_known"] == pytest.approx(100.0 * passed / (total - 7), abs=1e-3)
    assert report["meta"]["model"] == "hand" and report["counts"]["samples"] == 2
    assert report["files"]["json"] == str(out_dir / "mtpb-exec.json")

    rows = {row["id"]: row for row in report["problems"]}
    assert rows["41"]["passed"] == 3 and rows["41"]["known_unpassable"] == [1, 4]
    assert rows["89"]["passed"] == 0 and rows["89"]["known_unpassable"] == [0, 1, 2, 3, 4]
    assert all(f["known_unpassable"] for f in rows["89"]["failures"])
    # The correct program for 41 fails exactly where the gold output is null, nowhere else.
    assert sorted(f["input"] for f in rows["41"]["failures"]) == [1, 4]
    assert rows["73"]["passed"] == 5 and rows["73"]["wall_seconds"] > 0
    known = report["known_unpassable"]["cases"]
    assert [(k["id"], k["input"]) for k in known] == [("41", 1), ("41", 4)] + [("89", i) for i in range(5)]
    assert all(k["scored"] for k in known)

    for category, entry in report["categories"].items():
        members = [row for row in report["problems"] if row["category"] == category]
        assert entry["cases"] == sum(row["cases"] for row in members)
        assert entry["pass_rate"] == pytest.approx(100.0 * entry["passed"] / entry["cases"], abs=1e-3)

    markdown = (out_dir / "mtpb-exec.md").read_text(encoding="utf-8")
    assert f"| {total} | {passed} | {100.0 * passed / total:.2f}% | {100.0 * passed / (total - 7):.2f}% |" in markdown
    assert "## Per category" in markdown and "## Known-unpassable cases" in markdown
    assert "| 89 | 2 | yes |" in markdown and "0/0: mismatch (known)" in markdown
    assert not list(out_dir.glob(".*"))  # no temporary files left behind

    print_summary(report)
    summary = capsys.readouterr().out
    assert f"{passed}/{total} cases passed" in summary and str(out_dir / "mtpb-exec.md") in summary


def test_samples_errors(tmp_path: Path, by_id: dict[str, Problem]) -> None:
    path = tmp_path / "SAMPLES.jsonl"
    path.write_text('{"id": "73", "input": 0, "program": "print(1)"}\n\n{"id": "73", "input": \n')
    with pytest.raises(ValueError, match=r"SAMPLES\.jsonl:3: malformed JSON"):
        read_samples(path)
    path.write_text('{"id": "73", "input": 0, "program": "print(1)"}\n{"id": "999", "input": 0, "program": ""}\n')
    with pytest.raises(ValueError, match=r"SAMPLES\.jsonl:2: unknown problem id '999'"):
        run_mtpb_exec(path, tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match=r"sample 1: problem 73 has inputs 0-4, not 5"):
        score_samples(by_id.values(), [{"id": "73", "input": 5, "program": ""}], progress=False)
    with pytest.raises(ValueError, match="duplicate"):
        score_samples(by_id.values(), [{"id": "73", "input": 0, "program": ""}] * 2, progress=False)
    assert not (tmp_path / "out").exists()


def test_report_from_cases_without_running(tmp_path: Path, by_id: dict[str, Problem]) -> None:
    cases = [ScoredCase("1", 0, 0, True, "ok", "", 0.5, synth_seconds=1.5),
             ScoredCase("1", 0, 1, False, "timeout", "still running", 2.0),
             ScoredCase("89", 0, 0, False, "ok", "known", 0.1, known_unpassable=True)]
    report = build_report(by_id.values(), cases, {"mode": "multi-turn"})
    assert report["pass_rate"] == pytest.approx(100 / 3, abs=1e-3)
    assert report["pass_rate_excluding_known"] == pytest.approx(50.0)
    row = next(row for row in report["problems"] if row["id"] == "1")
    assert row["wall_seconds"] == pytest.approx((0.5 + 1.5 + 2.0) / 2)
    assert [k["scored"] for k in report["known_unpassable"]["cases"]].count(True) == 1
    json_path, md_path = write_report(report, tmp_path / "r", "x")
    assert json.loads(json_path.read_text())["meta"] == {"mode": "multi-turn"}
    assert "timeout" in md_path.read_text()
