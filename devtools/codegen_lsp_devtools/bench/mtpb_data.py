"""The Multi-Turn Programming Benchmark (MTPB, CodeGen paper): loading problems and rendering them as files.

The data is read from `../shared/mtpb/mtpb.jsonl` (never copied into the repository); see its README.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codegen_lsp.resources import checkout_root

ENV_VAR = "CODEGEN_LSP_MTPB"
HEADER = "# Import libraries.\n\nimport numpy as np\n\n"
DEFAULT_MAX_GEN_LENGTH = 256  # problems 39-45 have no max_gen_length; the paper's harness uses 256
_RELATIVE = Path("..") / "shared" / "mtpb" / "mtpb.jsonl"


class MtpbDataError(Exception):
    """The MTPB data file is missing or malformed (the message says where and why)."""


@dataclass(frozen=True)
class Problem:
    id: str
    name: str
    category: str
    prompts: tuple[str, ...]
    inputs: tuple[dict, ...]
    outputs: tuple  # only the first len(inputs) are used (problem 57 lists one more)
    max_gen_length: int = DEFAULT_MAX_GEN_LENGTH

    def turns(self, input_index: int) -> list[str]:
        """The natural-language turns for one test case: each prompt template filled with the input."""
        values = self.inputs[input_index]
        return [prompt.format(**values) for prompt in self.prompts]

    def expected(self, input_index: int) -> Any:
        if not 0 <= input_index < len(self.inputs):
            raise IndexError(f"problem {self.id} has {len(self.inputs)} inputs, not {input_index + 1}")
        return self.outputs[input_index]

    @property
    def case_count(self) -> int:
        return len(self.inputs)


def default_data_path() -> Path:
    """$CODEGEN_LSP_MTPB, else `../shared/mtpb/mtpb.jsonl` beside the checkout or the working directory."""
    override = os.environ.get(ENV_VAR)
    if override:
        path = Path(override)
        if not path.is_file():
            raise MtpbDataError(f"{ENV_VAR} points to {path}, which is not a file")
        return path
    root = checkout_root()
    candidates = ([root / _RELATIVE] if root is not None else []) + [Path.cwd() / _RELATIVE]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    looked = ", ".join(str(c) for c in candidates)
    raise MtpbDataError(f"MTPB data not found (looked at {looked}); set {ENV_VAR} to the path of mtpb.jsonl")


def _field(row: dict, name: str, kind: type, where: str) -> Any:
    if name not in row:
        raise MtpbDataError(f"{where}: missing field {name!r}")
    value = row[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise MtpbDataError(f"{where}: field {name!r} should be {kind.__name__}, got {type(value).__name__}")
    return value


def _problem_from_row(row: Any, where: str) -> Problem:
    if not isinstance(row, dict):
        raise MtpbDataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    prompts = _field(row, "prompts", list, where)
    inputs = _field(row, "inputs", list, where)
    outputs = _field(row, "outputs", list, where)
    if not prompts or not all(isinstance(p, str) for p in prompts):
        raise MtpbDataError(f"{where}: 'prompts' should be a non-empty list of strings")
    if not all(isinstance(i, dict) for i in inputs):
        raise MtpbDataError(f"{where}: 'inputs' should be a list of objects")
    if len(outputs) < len(inputs):
        raise MtpbDataError(f"{where}: {len(inputs)} inputs but only {len(outputs)} outputs")
    max_gen = row.get("max_gen_length", DEFAULT_MAX_GEN_LENGTH)
    if not isinstance(max_gen, int) or isinstance(max_gen, bool) or max_gen <= 0:
        raise MtpbDataError(f"{where}: 'max_gen_length' should be a positive integer")
    problem = Problem(
        id=str(_field(row, "id", str, where)),
        name=_field(row, "name", str, where).strip(),
        category=_field(row, "category", str, where),
        prompts=tuple(prompts),
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        max_gen_length=max_gen,
    )
    for index in range(len(inputs)):
        try:
            problem.turns(index)
        except (KeyError, IndexError, ValueError) as exc:
            raise MtpbDataError(f"{where}: input {index} does not fill the prompts ({exc!r})") from exc
    return problem


def load_problems(path: Path | None = None) -> list[Problem]:
    """All problems of the benchmark, in file order."""
    path = default_data_path() if path is None else Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MtpbDataError(f"MTPB data file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MtpbDataError(f"cannot read MTPB data file {path}: {exc}") from exc
    problems: list[Problem] = []
    seen: set[str] = set()
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MtpbDataError(f"{where}: malformed JSON ({exc.msg} at column {exc.colno})") from None
        problem = _problem_from_row(row, where)
        if problem.id in seen:
            raise MtpbDataError(f"{where}: duplicate problem id {problem.id!r}")
        seen.add(problem.id)
        problems.append(problem)
    if not problems:
        raise MtpbDataError(f"MTPB data file {path} holds no problems")
    return problems


def _comment(text: str) -> str:
    # Problem 17's prompt carries its own "# " lines (the paper only prefixes the first line); other
    # lines of a multi-line turn get the prefix so they stay inside the comment.
    lines = text.split("\n")
    return "\n".join(line if i > 0 and line.startswith("#") else f"# {line}" for i, line in enumerate(lines))


def render_file(problem: Problem, input_index: int, single_turn: bool = False) -> str:
    """The file a user would write: the header, then one comment block per turn (or one for all turns)."""
    turns = [_comment(turn) for turn in problem.turns(input_index)]
    if single_turn:
        return HEADER + "".join(f"{turn}\n" for turn in turns) + "\n"
    return HEADER + "".join(f"{turn}\n\n" for turn in turns)
