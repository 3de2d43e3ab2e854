"""Training the embedded default model (issue 7): corpus, tokenizer, CodeGen2-recipe training."""
