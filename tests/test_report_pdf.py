"""Page one of the printed report is exactly one A4 page for households of up to 4 members, checked by printing.

The HTML report is what the web workbench prints, so this test prints it with headless Chromium and
counts the PDF's pages, rather than estimating lines. It needs a ``chromium`` binary and the CJK font
the report's CSS names (Debian: ``chromium`` and ``fonts-noto-cjk``); without them it is skipped,
saying which is missing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from engine.explain.report import build_report, render_html

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.json"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
APPENDIX = '<section class="appendix">'


def _cjk_font() -> bool:
    fc_list = shutil.which("fc-list")
    if not fc_list:
        return False
    out = subprocess.run([fc_list, ":family=Noto Sans CJK SC"], capture_output=True, text=True, check=False).stdout
    return bool(out.strip())


pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary found (Debian: apt-get install chromium)"),
    pytest.mark.skipif(
        CHROMIUM is not None and not _cjk_font(),
        reason="font 'Noto Sans CJK SC' not installed (Debian: apt-get install fonts-noto-cjk); page counts need it",
    ),
]


def _pages(html_text: str, tmp: Path, name: str) -> int:
    src, pdf = tmp / f"{name}.html", tmp / f"{name}.pdf"
    src.write_text(html_text, encoding="utf-8")
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp / ('profile-' + name)}",
            f"--print-to-pdf={pdf}",
            "--no-pdf-header-footer",
            src.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    # Chromium (Skia) writes one uncompressed "/Type /Page" dictionary per page
    return len(re.findall(rb"/Type\s*/Page\b", pdf.read_bytes()))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_printed_page_one_is_one_a4_page_and_the_appendix_starts_on_the_next(engine, path, tmp_path):
    h = json.loads(path.read_text(encoding="utf-8"))
    if len(h["members"]) > 4:
        pytest.skip("the one-page promise is for households of up to 4 members")
    page = render_html(build_report(engine.evaluate(h), h))
    head, _, appendix = page.partition(APPENDIX)
    assert appendix, "the HTML report has no appendix section"
    # page one alone: exactly one sheet
    assert _pages(head + "</body></html>\n", tmp_path, "one") == 1
    # page one followed by the appendix's first heading: the heading opens a second sheet
    heading = appendix.split("</h1>", 1)[0]
    assert _pages(f"{head}{APPENDIX}{heading}</h1></section></body></html>\n", tmp_path, "two") == 2
