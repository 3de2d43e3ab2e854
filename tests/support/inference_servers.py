"""The inference servers the remote-backend tests start on loopback (kept with the dev tools, whose benches
start them too): llama_cpp.server here, llama.cpp's llama-server in codegen_lsp_devtools.bench.llama_server."""

from codegen_lsp_devtools.bench.llama_cpp_server import InferenceServer, free_port

__all__ = ["InferenceServer", "free_port"]
