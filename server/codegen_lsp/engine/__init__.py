"""Inference engines. Only this package (and convert/quantize.py) imports llama_cpp."""
