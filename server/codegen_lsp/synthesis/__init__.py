"""Synthesis from comments: turns, truncation, and the multi-turn runner."""
