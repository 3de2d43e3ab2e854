"""Model registry, downloads, cache locations and the tiny test-model factory."""
