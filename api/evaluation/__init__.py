"""Evaluation and records: the evaluation service, stored determinations and their schemas."""
