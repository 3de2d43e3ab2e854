"""GGUF model files: inspection before loading (`inspect`) and the metadata keys our converter writes (`meta`)."""
