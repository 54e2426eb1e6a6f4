"""In a real browser (Debian's Chromium through Playwright): sign in through the page, land on the page
that asked for it, sign out. Screenshots go to test-artifacts/ (not committed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from served import JIUZHU, Served

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (bash .ci/browser.sh installs it)")


@pytest.fixture
def served(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    made = subprocess.run(
        [JIUZHU, "users", "create", "--name", "管理员甲", "--role", "admin", "--locality", "210000", "--generate-password",
         "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert made.returncode == 0, made.stderr
    server = Served(tmp_path, workers=1)
    try:
        server.admin_key()
        server.wait_ready()
        yield server, made.stdout.strip()
    finally:
        server.stop()


def test_sign_in_lands_on_next_page_and_sign_out(served):
    server, password = served
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")
            page.goto(server.url + "/admin")
            assert page.url == server.url + "/login?next=/admin"
            page.get_by_label("用户名").fill("管理员甲")
            page.get_by_label("密码").fill("not-the-password")
            page.get_by_role("button", name="登录").click()
            assert page.locator("#password-error").inner_text() == "用户名或密码不正确"
            assert page.get_by_label("用户名").input_value() == "管理员甲"  # nothing typed is lost
            page.screenshot(path=str(ARTIFACTS / "accounts-login-error.png"), full_page=True)

            page.get_by_label("密码").fill(password)
            page.get_by_role("button", name="登录").click()
            page.wait_for_url(server.url + "/admin")
            assert page.get_by_role("heading", name="管理", level=1).is_visible()
            assert "管理员甲" in page.locator("header").inner_text()
            cookie = next(c for c in page.context.cookies() if c["name"] == "jiuzhu_session")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
            page.screenshot(path=str(ARTIFACTS / "accounts-admin.png"), full_page=True)

            page.get_by_role("button", name="退出").click()
            page.wait_for_url(server.url + "/login")
            assert not any(c["name"] == "jiuzhu_session" for c in page.context.cookies())
            page.goto(server.url + "/admin")
            assert page.url == server.url + "/login?next=/admin"
            page.screenshot(path=str(ARTIFACTS / "accounts-signed-out.png"), full_page=True)
        finally:
            browser.close()


@pytest.mark.parametrize("path, title", [("/docs", ".swagger-ui .info .title"), ("/redoc", "h1")])
def test_api_docs_render_with_nothing_from_another_host(served, path, title):
    server, _ = served
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            fetched = []
            page.on("requestfinished", lambda r: fetched.append(r.url))
            page.goto(server.url + path)
            heading = page.locator(title).first
            heading.wait_for(timeout=20_000)
            assert "jiuzhu 救助 认定服务" in heading.inner_text()
            page.screenshot(path=str(ARTIFACTS / f"accounts{path.replace('/', '-')}.png"))
            outside = [u for u in fetched if not u.startswith((server.url, "data:", "blob:"))]
            assert outside == [] and any(u.endswith(".js") for u in fetched)
        finally:
            browser.close()
