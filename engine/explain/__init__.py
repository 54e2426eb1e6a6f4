"""Explanation and summary: the rendered reasons, the case report and the summary tables."""
