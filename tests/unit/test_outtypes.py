"""codegen_lsp.outtypes (light, read by the CLI for every command) agrees with the converter."""

from __future__ import annotations

import llama_cpp

from codegen_lsp import outtypes
from codegen_lsp.convert import writer


def test_float_outtypes_are_the_writers():
    assert tuple(writer.FLOAT_OUTTYPES) == outtypes.FLOAT_OUTTYPES


def test_every_quant_type_names_a_llama_cpp_file_type():
    assert all(isinstance(getattr(llama_cpp, name, None), int) for name in outtypes.QUANT_TYPES.values())
