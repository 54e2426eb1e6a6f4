"""The household record: its declaration and what derives from it."""
