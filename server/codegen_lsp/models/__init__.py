"""Model registry, downloads and cache locations, and which model file to load (the test-model factory
is in the development tools: codegen_lsp_devtools.test_models)."""
