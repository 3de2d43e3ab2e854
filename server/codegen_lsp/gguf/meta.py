"""The GGUF metadata our converter writes so the server never guesses how to prompt a file.

Both sides import the keys from here: the converter writes them, the engine reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

NAMESPACE = "codegen_lsp"
KEY_FAMILY = f"{NAMESPACE}.family"
KEY_VARIANT = f"{NAMESPACE}.variant"
KEY_PROMPT_FORMAT = f"{NAMESPACE}.prompt_format"
KEY_MASK_TOKEN_ID = f"{NAMESPACE}.infill.mask_token_id"
KEY_SEP_TOKEN_ID = f"{NAMESPACE}.infill.sep_token_id"
KEY_EOM_TOKEN_ID = f"{NAMESPACE}.infill.eom_token_id"
KEY_END_TOKEN_IDS = f"{NAMESPACE}.end_token_ids"
KEY_CONTEXT_LENGTH = f"{NAMESPACE}.context_length"
KEY_SOURCE = f"{NAMESPACE}.source"


class Family(str, Enum):
    CODEGEN1 = "codegen1"
    CODEGEN2 = "codegen2"
    CODEGEN25 = "codegen25"


class PromptFormat(str, Enum):
    """How a model wants its prompt. The FIM families come from the token ids a GGUF declares."""

    LEFT_TO_RIGHT = "left-to-right"
    CODEGEN2_INFILL = "codegen2-infill"
    STARCODER_FIM = "starcoder-fim"
    CODELLAMA_FIM = "codellama-fim"
    DEEPSEEK_FIM = "deepseek-fim"
    QWEN_FIM = "qwen-fim"


@dataclass(frozen=True)
class PromptInfo:
    """What the converter records about prompting; written to and read from GGUF metadata."""

    family: Family
    prompt_format: PromptFormat
    context_length: int
    end_token_ids: tuple[int, ...]
    variant: str = ""
    mask_token_id: int | None = None
    sep_token_id: int | None = None
    eom_token_id: int | None = None
    source: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def as_metadata(self) -> dict[str, object]:
        meta: dict[str, object] = {
            KEY_FAMILY: self.family.value,
            KEY_PROMPT_FORMAT: self.prompt_format.value,
            KEY_CONTEXT_LENGTH: self.context_length,
            KEY_END_TOKEN_IDS: list(self.end_token_ids),
        }
        if self.variant:
            meta[KEY_VARIANT] = self.variant
        if self.source:
            meta[KEY_SOURCE] = self.source
        for key, value in ((KEY_MASK_TOKEN_ID, self.mask_token_id), (KEY_SEP_TOKEN_ID, self.sep_token_id),
                           (KEY_EOM_TOKEN_ID, self.eom_token_id)):
            if value is not None:
                meta[key] = value
        return meta
