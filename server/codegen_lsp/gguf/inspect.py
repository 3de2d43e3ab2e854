"""Inspect a GGUF before llama.cpp loads it: clear errors for missing, truncated or wrong files,
and the prompting facts (our converter's metadata, or a FIM family from the declared token ids)."""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from pathlib import Path

from . import meta as mm
from .header import GGUF_MAGIC, HeaderError, read_header

TEXT_ARCHITECTURES_WITHOUT_VOCAB = ("clip", "whisper", "encodec")


class ModelFileError(Exception):
    """A model file that cannot be used; `str()` names the file and the reason."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = Path(path), problem


@dataclass(frozen=True)
class ModelFileInfo:
    path: Path
    architecture: str
    name: str
    context_length: int
    prompt_format: mm.PromptFormat
    family: str
    end_token_ids: tuple[int, ...]
    token_ids: dict[str, int]  # role → id: bos, eos, eom, mask, sep, fim_pre, fim_suf, fim_mid ...
    size_bytes: int


TOKENS_KEY = "tokenizer.ggml.tokens"


def inspect_model_file(path: Path | str) -> ModelFileInfo:
    path = Path(path)
    if not path.exists():
        raise ModelFileError(path, "model file not found")
    if path.is_dir():
        raise ModelFileError(path, "is a folder, expected a .gguf file")
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ModelFileError(path, f"cannot read ({exc.strerror or exc})") from None
    if magic != GGUF_MAGIC:
        raise ModelFileError(path, "not a GGUF file (convert it with `codegen-lsp convert`)")
    try:
        header = read_header(path, string_arrays=(TOKENS_KEY,))
    except HeaderError as exc:
        raise ModelFileError(path, f"truncated or corrupt GGUF ({exc})") from None
    except OSError as exc:
        raise ModelFileError(path, f"cannot read ({exc.strerror or exc})") from None
    fields = header.fields
    arch = fields.get("general.architecture")
    if not arch or not isinstance(arch, str):
        raise ModelFileError(path, "GGUF has no general.architecture")
    tokens = fields.get(TOKENS_KEY)
    if arch in TEXT_ARCHITECTURES_WITHOUT_VOCAB or not isinstance(tokens, list) or not tokens:
        raise ModelFileError(path, f"not a text-generation model (architecture {arch!r}, no vocabulary)")
    if header.tensors:
        last = max(header.tensors, key=lambda t: t.offset)
        if last.offset + last.n_bytes > path.stat().st_size:
            raise ModelFileError(path, "truncated GGUF (tensor data runs past the end of the file)")

    ids: dict[str, int] = {}
    for role, key in (("bos", "tokenizer.ggml.bos_token_id"), ("eos", "tokenizer.ggml.eos_token_id"),
                      ("eot", "tokenizer.ggml.eot_token_id"), ("eom", "tokenizer.ggml.eom_token_id"),
                      ("fim_pre", "tokenizer.ggml.fim_pre_token_id"), ("fim_suf", "tokenizer.ggml.fim_suf_token_id"),
                      ("fim_mid", "tokenizer.ggml.fim_mid_token_id"), ("mask", mm.KEY_MASK_TOKEN_ID),
                      ("sep", mm.KEY_SEP_TOKEN_ID), ("infill_eom", mm.KEY_EOM_TOKEN_ID)):
        value = fields.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            ids[role] = value
    if "file_sep" not in ids:  # repository-level layout (Qwen2.5-Coder, StarCoder2): other files go between these
        declared_sep = fields.get("tokenizer.ggml.fim_sep_token_id")
        found = declared_sep if isinstance(declared_sep, int) else _token_id(tokens, ("<|file_sep|>", "<file_sep>"))
        if found is not None:
            ids["file_sep"] = found
    declared = fields.get(mm.KEY_PROMPT_FORMAT)
    family = fields.get(mm.KEY_FAMILY) or "unknown"
    context = fields.get(mm.KEY_CONTEXT_LENGTH) or fields.get(f"{arch}.context_length") or 2048
    ends = fields.get(mm.KEY_END_TOKEN_IDS)  # a numeric array: an array.array
    end_ids = tuple(int(x) for x in ends) if isinstance(ends, array) else tuple(
        ids[r] for r in ("eos", "eot", "eom") if r in ids)
    return ModelFileInfo(
        path=path, architecture=str(arch), name=str(fields.get("general.name") or path.stem),
        context_length=int(context), prompt_format=_prompt_format(declared, ids, tokens),
        family=str(family), end_token_ids=end_ids, token_ids=ids, size_bytes=path.stat().st_size,
    )


def _token_id(tokens: list[str], texts: tuple[str, ...]) -> int | None:
    wanted = set(texts)
    return next((i for i, t in enumerate(tokens) if t in wanted), None)


def _prompt_format(declared, ids: dict[str, int], tokens: list[str]) -> mm.PromptFormat:
    """Our metadata first; otherwise a FIM family recognised from the FIM tokens the file declares."""
    if declared:
        try:
            return mm.PromptFormat(declared)
        except ValueError:
            pass
    if "fim_pre" in ids and ids["fim_pre"] < len(tokens):
        prefix_token = tokens[ids["fim_pre"]]
        if prefix_token == "<fim_prefix>":
            return mm.PromptFormat.STARCODER_FIM
        if prefix_token == "<|fim_prefix|>":
            return mm.PromptFormat.QWEN_FIM
        if "fim▁begin" in prefix_token:
            return mm.PromptFormat.DEEPSEEK_FIM
        if prefix_token.replace("\u2581", " ").strip() == "<PRE>":  # CodeLlama: "▁<PRE>" (SentencePiece space)
            return mm.PromptFormat.CODELLAMA_FIM
    return mm.PromptFormat.LEFT_TO_RIGHT
