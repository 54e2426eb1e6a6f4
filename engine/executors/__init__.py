"""Executors of the loaded rule book: the interpreter, the compiled fast path and outcomes."""
