"""The output types `codegen-lsp convert` writes, importable without numpy or gguf: the CLI builds its
parser from them for every command, `serve` included, and the language server process stays lean."""

from __future__ import annotations

FLOAT_OUTTYPES = ("f32", "f16")
# Our name -> the llama_cpp constant llama.cpp's quantizer takes (convert/quantize.py).
QUANT_TYPES = {"q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
               "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M", "q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
               "q6_k": "LLAMA_FTYPE_MOSTLY_Q6_K"}
OUTTYPES = FLOAT_OUTTYPES + tuple(QUANT_TYPES)
