"""The rule book: loading rule files, their templates, program interactions and the YAML cases."""
