"""What the model sees: prompt segments per format, fitted to the context window. Pure functions."""
