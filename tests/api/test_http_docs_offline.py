"""/docs and /redoc work on a network without internet: their HTML names no other host, and every
script, style and icon it names is served by jiuzhu itself."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import pytest

_REFS = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*["']([^"']+)["']|spec-url=["']([^"']+)["']""")


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_name_no_outside_host_and_every_asset_answers(client, path):
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    # and the browser is told to load nothing from elsewhere (ReDoc's bundle names a logo on its CDN)
    assert "default-src 'self'" in r.headers["content-security-policy"]
    html = r.text
    assert not re.search(r"(?i)\b(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html), "an outside host is named"
    refs = {next(g for g in m.groups() if g) for m in _REFS.finditer(html)}
    assert any(ref.endswith(".js") for ref in refs), refs
    for ref in refs:
        url = urljoin(path, ref)
        assert not urlsplit(url).netloc, ref
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 100, url


def test_swagger_ui_script_is_the_real_bundle(client):
    r = client.get("/docs-assets/swagger-ui-bundle.js")
    assert r.status_code == 200 and "SwaggerUIBundle" in r.text
    assert "Redoc" in client.get("/docs-assets/redoc.standalone.js").text
