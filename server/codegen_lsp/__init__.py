"""codegen-lsp: a language server that runs a local CodeGen model through llama.cpp."""

__version__ = "0.1.0"
