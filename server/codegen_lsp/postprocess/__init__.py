"""Turning a raw model completion into the text to insert."""

from .cut import cut_to_syntax_unit
from .errors import count_errors, introduces_parse_error
from .indent import detect_indent_unit, reindent
from .mode import Mode, decide_mode
from .overlap import trim_suffix_overlap
from .pipeline import CompletionContext, PostprocessResult, postprocess

__all__ = [
    "CompletionContext",
    "Mode",
    "PostprocessResult",
    "count_errors",
    "cut_to_syntax_unit",
    "decide_mode",
    "detect_indent_unit",
    "introduces_parse_error",
    "postprocess",
    "reindent",
    "trim_suffix_overlap",
]
