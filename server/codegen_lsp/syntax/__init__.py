"""Tree-sitter grammars, queries and syntax helpers."""
