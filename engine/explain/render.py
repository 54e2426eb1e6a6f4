"""A determination as a printable Chinese report: the answer first, then the review appendix.

The report itself is built by ``engine.explain.report``; this module keeps the name the CLI and the
batch tools have always called.
"""

from __future__ import annotations

from engine.book.templates import LABELS
from engine.explain.report import build_report, render_html, render_text


def render_report(det: dict, household: dict | None = None) -> str:
    """The text report; ``household`` (the input) lets it name members by relation ("户主p1")."""
    return render_text(build_report(det, household))


def render_report_html(det: dict, household: dict | None = None) -> str:
    return render_html(build_report(det, household))


__all__ = ["LABELS", "render_report", "render_report_html"]
