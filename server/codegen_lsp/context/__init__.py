"""What the model sees: prompt segments per format, fitted to the context window (pure functions), and
the suggestion cache (typed-through answers, recent contexts)."""
