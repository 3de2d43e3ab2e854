"""All settings in one pydantic model: defaults, validation, merging from every source, JSON Schema.

Sources, later overriding earlier: defaults < codegen-lsp.toml in the workspace root <
initializationOptions < workspace/configuration and didChangeConfiguration (section "codegenLsp").
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .exclusion import DEFAULT_EXCLUDE, check_globs

SECTION = "codegenLsp"
WORKSPACE_FILE = "codegen-lsp.toml"
CLIENT_KEY = "client"
PromptFormatSetting = Literal["auto", "left-to-right", "codegen2-infill", "starcoder-fim", "codellama-fim",
                              "deepseek-fim", "qwen-fim"]


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    model: str | None = Field(None, description="Path to a .gguf file, or a registry name pulled with "
                                                "`codegen-lsp models pull`. Empty: the embedded default model.")
    prompt_format: PromptFormatSetting = Field("auto", alias="promptFormat",
                                               description="How to prompt the model; auto reads the GGUF metadata.")
    max_tokens: int = Field(64, ge=1, le=2048, alias="maxTokens", description="Tokens generated per suggestion.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature; 0 is greedy.")
    top_p: float = Field(0.95, gt=0.0, le=1.0, alias="topP")
    stop: list[str] = Field(default_factory=list, description="Extra stop strings.")
    candidates: int = Field(3, ge=1, le=5,
                            description="Suggestions returned when one is asked for explicitly (an Invoked inline "
                                        "completion: cycle through them); decoded together from one prompt "
                                        "evaluation. Automatic requests get one. Local models only.")
    token_healing: bool = Field(True, alias="tokenHealing",
                                description="Prompt up to the last whole token before the cursor and let the model "
                                            "spell out the rest (a trailing space, indentation, half a word) first, "
                                            "so the suggestion does not start at an odd token boundary. Through "
                                            "a remoteUrl too, with codegenLsp.model naming the same GGUF (else "
                                            "trailing spaces and tabs are what is cut).")
    prompt_lookup: bool = Field(False, alias="promptLookup",
                                description="Greedy decoding drafts the tokens that followed the last few tokens "
                                            "earlier in the context and checks them in one batch (prompt-lookup "
                                            "speculation), where the measured cost of a batch and the acceptance "
                                            "rate say it pays. Off by default: on a few CPU cores a batch costs "
                                            "nearly as much per token as single steps, so it measured no faster. "
                                            "Local models only.")
    suffix_fit: bool = Field(True, alias="suffixFit",
                             description="Models without fill-in-the-middle (left-to-right prompts): on a blank "
                                         "line with code below, decode several first lines and suggest the one "
                                         "the code below follows best (e.g. `paths.append(...)` before `return "
                                         "paths`). Costs a batch of 8 sequences on such lines. Local models only.")
    repetition_filter: bool = Field(True, alias="repetitionFilter",
                                    description="Cut a suggestion where it starts repeating itself (a unit repeated 8 "
                                                "times, a block repeating the one before it, a line a third time) "
                                                "and stop decoding there.")
    cross_file_tokens: int = Field(1024, ge=0, le=16384, alias="crossFileTokens",
                                   description="Tokens of the prompt for chunks of the other files you work in "
                                               "(opened, edited, viewed), chosen by similarity to the text around "
                                               "the cursor and placed before the current file (at most half the "
                                               "context window); 0 turns it off.")
    context_tokens: int = Field(2048, ge=64, le=131072, alias="contextTokens",
                                description="Context window (n_ctx); capped at the model's training length.")
    prefix_share: float = Field(0.75, gt=0.0, lt=1.0, alias="prefixShare",
                                description="Share of the prompt budget for text before the cursor when a suffix is used.")
    debounce_ms: int = Field(0, ge=0, le=5000, alias="debounceMs",
                             description="Least wait before generating an inline suggestion.")
    adaptive_debounce: bool = Field(True, alias="adaptiveDebounce",
                                    description="Wait longer (up to debounceMaxMs) while the user types faster "
                                                "than the model answers.")
    debounce_max_ms: int = Field(400, ge=0, le=5000, alias="debounceMaxMs",
                                 description="Longest adaptive wait before generating.")
    warm_after_ms: int = Field(800, ge=0, le=60000, alias="warmAfterMs",
                               description="After an edit with no request for this long, precompute the suggestion "
                                           "at the edit (warms the KV cache); 0 turns it off.")
    first_suggestion_ms: int = Field(1000, ge=0, le=60000, alias="firstSuggestionMs",
                                     description="How long evaluating a prompt may take when the model's cache "
                                                 "holds less of it (a file just opened): past it the suggestion "
                                                 "comes from a shorter window, the text nearest the cursor, while "
                                                 "the full window is evaluated in the background for the next "
                                                 "keystrokes; 0 always waits for the full window. Local models.")
    speculative_suggestions: bool = Field(True, alias="speculativeSuggestions",
                                          description="After answering, compute the suggestion that follows it, "
                                                      "as if accepted, while the engine is idle.")
    request_timeout_ms: int = Field(20000, ge=100, le=600000, alias="requestTimeoutMs",
                                    description="A suggestion (asked for, speculative or warmed) the model has not "
                                                "answered after this long is given up: the job is cancelled and "
                                                "the request answers with no suggestion (its stats say \"the model "
                                                "did not answer within N ms\"). Twice what a cold 2048-token "
                                                "prompt took on 2 CPU cores; what was evaluated stays in the KV "
                                                "cache for the next request.")
    threads: int | None = Field(None, ge=1, le=256, description="CPU threads for llama.cpp (default: all cores).")
    gpu_layers: int = Field(0, ge=-1, alias="gpuLayers", description="Layers offloaded to the GPU (-1: all).")
    seed: int = Field(0, description="Sampling seed.")
    synthesis_max_tokens: int = Field(128, ge=1, le=2048, alias="synthesisMaxTokens",
                                      description="Token budget per turn of Synthesize from comments.")
    synthesis_temperature: float = Field(0.0, ge=0.0, le=2.0, alias="synthesisTemperature",
                                         description="Sampling temperature for synthesis (the MTPB uses 0.2); 0 is greedy.")
    synthesis_turn_timeout_ms: int = Field(60000, ge=100, le=600000, alias="synthesisTurnTimeoutMs",
                                           description="A turn still generating after this long inserts nothing.")
    max_document_bytes: int = Field(4 * 2**20, ge=1024, alias="maxDocumentBytes",
                                    description="Bigger documents get plain-text context (no syntax tree).")
    offer_model_download: bool = Field(True, alias="offerModelDownload",
                                       description="When the built-in demo model is running (no `model` set, no "
                                                   "remoteUrl), offer once per workspace to download "
                                                   "CodeGen-350M-mono or to choose a .gguf. Off: never ask "
                                                   "(CI, headless use).")
    exclude: list[str] = Field(default_factory=list,
                               description="Files that never reach the model: no suggestion in them, and nothing of "
                                           "them in any prompt, in the other files' context or in a cache. "
                                           "gitignore-style globs, matched ignoring case against the path relative "
                                           "to the workspace (a pattern without a slash matches a name at any "
                                           "depth), or the name of a file outside it. They add to the built-in "
                                           f"ones ({', '.join(DEFAULT_EXCLUDE)}); `!pattern` re-includes "
                                           "(e.g. `!.env.example`).")
    respect_gitignore: bool = Field(True, alias="respectGitignore",
                                    description="Files git ignores (build output, dependencies, local config) are "
                                                "excluded too, as `git check-ignore` answers in the workspace's "
                                                "repository.")
    disabled_languages: list[str] = Field(default_factory=list, alias="disabledLanguages",
                                          description="languageIds (e.g. markdown, plaintext) whose documents never "
                                                      "reach the model, as if excluded.")
    remote_url: str | None = Field(None, alias="remoteUrl",
                                   description="Base URL of an OpenAI-compatible completion server (llama-server, "
                                               "vLLM, llama_cpp.server) to generate with instead of the in-process "
                                               "model. Infill formats need `model` to point at a local copy of the "
                                               "same GGUF. Empty: in-process.")
    remote_model: str | None = Field(None, alias="remoteModel",
                                     description="The `model` name sent to the remote server (vLLM needs it).")
    remote_timeout_ms: int = Field(30000, ge=100, le=600000, alias="remoteTimeoutMs",
                                   description="A remote request still running after this long returns nothing.")
    remote_api_key: str | None = Field(None, alias="remoteApiKey",
                                       description="Sent as `Authorization: Bearer` to the remote server.")

    @field_validator("exclude")
    @classmethod
    def _globs(cls, patterns: list[str]) -> list[str]:
        check_globs(patterns)  # GlobError (a ValueError) names the pattern and why
        return patterns

    def reload_needed(self, other: "Settings") -> bool:
        """Whether going from self to other needs a new llama.cpp context or remote engine (the rest applies live)."""
        keys = ("model", "context_tokens", "threads", "gpu_layers", "seed", "remote_url", "remote_model",
                "remote_timeout_ms", "remote_api_key")
        return any(getattr(self, k) != getattr(other, k) for k in keys)


class SettingsError(ValueError):
    """A bad setting: names the field and the reason; `key` is the top-level key at fault, if any."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def parse_settings(base: Settings, *overrides: dict[str, Any] | None) -> Settings:
    merged: dict[str, Any] = base.model_dump(by_alias=True)
    for override in overrides:
        if override:
            merged.update({k: v for k, v in override.items()})
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "settings"
        key = str(first["loc"][0]) if first["loc"] else None
        raise SettingsError(f"setting {field!r}: {first['msg']} (got {first.get('input')!r})", key) from None


def section_of(payload: Any) -> dict[str, Any] | None:
    """Accept either {"codegenLsp": {...}} or the section itself. The `client` key holds editor-client
    settings (server command, restarts…) that editors send along with the section: not ours."""
    if not isinstance(payload, dict):
        return None
    inner = payload.get(SECTION, payload)
    if not isinstance(inner, dict):
        return None
    return {k: v for k, v in inner.items() if k != CLIENT_KEY}


def keys_set(source: dict[str, Any] | None) -> set[str]:
    """The keys a source gives a value (editors send every key, most as null or "")."""
    return {k for k, v in (source or {}).items() if v not in (None, "")}


def read_workspace_file(root: Path | None) -> dict[str, Any] | None:
    if root is None:
        return None
    path = root / WORKSPACE_FILE
    if not path.is_file():
        return None
    try:
        return section_of(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{path}: {exc}") from None


def settings_json_schema() -> dict[str, Any]:
    return Settings.model_json_schema(by_alias=True)
