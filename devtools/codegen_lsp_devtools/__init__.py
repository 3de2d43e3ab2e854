"""codegen-lsp's development tools: benchmarks (latency, engine, quality, MTPB with its sandbox), the
default-model training and the tiny random-weight test-model factory. Not needed to serve."""
