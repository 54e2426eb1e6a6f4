"""预警、政策、模拟 in a real browser (Debian's Chromium driven by Playwright), against the app served by
uvicorn on a loopback port: an alert acknowledged, a parameter browsed, a small simulation run, its
briefing read and its files downloaded.

People sign in through the real sign-in page (api/accounts): every form post carries the session's CSRF
token. The download links get no key header from the browser: only the session lets them through (they
answered 401 before).
Screenshots go to test-artifacts/ (not committed).
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("playwright")
uvicorn = pytest.importorskip("uvicorn")

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from api.app import create_app  # noqa: E402
from api.auth.keys import Role, Scope  # noqa: E402
from api.core.config import Settings  # noqa: E402
from api.web.session import accounts  # noqa: E402
from engine.batch import synth  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "correct-horse-42"
POPULATION = "liaoning-small"

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed (bash .ci/browser.sh)")

WORKER = {
    "locality": "210102",
    "area": "urban",
    "members": [
        {
            "id": "p1",
            "relation": "head",
            "birth_date": "1980-03-01",
            "hukou_locality": "210102",
            "supporters": "able",
            "employed": True,
            "incomes": [{"type": "wage", "monthly": "1400.00"}],
        },
        {
            "id": "p2",
            "relation": "child",
            "birth_date": "2012-06-01",
            "hukou_locality": "210102",
            "supporters": "able",
            "schooling": "compulsory",
        },
    ],
    "assets": {"financial": "2000.00", "vehicles": [], "properties": 1},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory, engine):
    """The app on a loopback port, offering a tiny synthetic population, with test sessions."""
    tmp = tmp_path_factory.mktemp("web")
    pops = tmp / "populations"
    synth.write(pops / POPULATION, "210000", 120, seed=5)
    settings = Settings(data_dir=tmp, populations_dir=pops, simulations_dir=tmp / "simulations", simulation_poll_seconds=0.2)
    app = create_app(settings, rules=engine)

    mp = pytest.MonkeyPatch()
    mp.delenv("JIUZHU_WRITER_SOCKET", raising=False)
    mp.delenv("JIUZHU_MONITOR_SOCKET", raising=False)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    repo = app.state.repo
    keys = {
        "caseworker": repo.create_key("沈阳经办", Role.CASEWORKER, Scope.of("210100"))[1],
        "caseworker_210102": repo.create_key("和平区经办", Role.CASEWORKER, Scope.of("210102"))[1],
        "policy": repo.create_key("省厅政策处", Role.POLICY, Scope.of("210000"))[1],
    }
    people = accounts(app)
    people.create_user("和平区经办", Role.CASEWORKER, Scope.of("210102"), PASSWORD)
    people.create_user("省厅政策处", Role.POLICY, Scope.of("210000"), PASSWORD)
    try:
        yield f"http://127.0.0.1:{port}", keys
    finally:
        server.should_exit = True
        thread.join(30)
        mp.undo()


@pytest.fixture(scope="module")
def browser():
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _signed_in(browser, url: str, name: str):
    """A browser context of a person signed in through the sign-in page, at 1366×768, no key header."""
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN", accept_downloads=True)
    page = ctx.new_page()
    page.goto(f"{url}/login")
    page.get_by_label("用户名").fill(name)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{url}/")
    page.close()
    return ctx


def test_an_alert_is_acknowledged(served, browser):
    url, keys = served
    r = httpx.post(
        f"{url}/v1/events",
        json={"household_id": "LN-B-1", "type": "register", "date": "2021-08-01", "household": WORKER},
        headers={"X-API-Key": keys["caseworker"]},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    alert = r.json()["alerts"][0]
    ctx = _signed_in(browser, url, "和平区经办")
    page = ctx.new_page()
    page.goto(f"{url}/alerts")
    card = page.locator(f"#alert-{alert['alert_id']}")
    expect(card).to_contain_text(alert["title"])
    expect(card).to_contain_text("待处理")
    page.screenshot(path=ARTIFACTS / "alerts.png", full_page=True)
    card.get_by_label("确认说明（可不填）").fill("已电话联系，下周入户核实")
    card.get_by_role("button", name="确认").click()
    expect(page.get_by_role("status")).to_contain_text("已确认该预警")
    page.goto(f"{url}/alerts?status=acknowledged")
    card = page.locator(f"#alert-{alert['alert_id']}")
    expect(card).to_contain_text("已确认")
    card.get_by_text("处置记录").click()
    expect(card).to_contain_text("已电话联系，下周入户核实")
    page.screenshot(path=ARTIFACTS / "alerts-acknowledged.png", full_page=True)
    stored = httpx.get(f"{url}/v1/alerts/{alert['alert_id']}", headers={"X-API-Key": keys["caseworker"]}).json()
    assert stored["status"] == "acknowledged"
    ctx.close()


def test_a_parameter_is_browsed(served, browser):
    url, _keys = served
    ctx = _signed_in(browser, url, "和平区经办")
    page = ctx.new_page()
    page.goto(f"{url}/policy")
    page.get_by_label("地区（输入名称或代码搜索）").fill("辽宁省沈阳市和平区")
    page.get_by_label("日期", exact=True).fill("2021-08-01")
    page.get_by_role("button", name="查看").click()
    row = page.locator("#param-dibao\\.standard\\.urban")
    expect(row).to_contain_text("672")  # 沈阳市 urban 低保 standard in 2021
    expect(row).to_contain_text("《")
    page.screenshot(path=ARTIFACTS / "policy.png", full_page=False)
    row.get_by_role("link").click()
    expect(page.locator("h1")).to_contain_text("低保")
    expect(page.locator("table")).to_contain_text("至今")
    page.screenshot(path=ARTIFACTS / "policy-parameter.png", full_page=True)
    page.goto(f"{url}/policy/programs/dibao")
    expect(page.locator("h1")).to_contain_text("最低生活保障")
    page.screenshot(path=ARTIFACTS / "policy-program.png", full_page=False)
    ctx.close()


def test_a_small_simulation_runs_and_its_report_and_files_open(served, browser):
    url, _keys = served
    ctx = _signed_in(browser, url, "省厅政策处")
    page = ctx.new_page()
    page.goto(f"{url}/simulations")
    page.get_by_label("人口数据").select_option(POPULATION)
    page.get_by_label("评估日期（可不填：按数据）").fill("2022-06-01")
    page.get_by_label("方案名称").fill("城市低保标准提高20%")
    page.get_by_label("第1项参数").select_option("dibao.standard.urban")
    page.get_by_label("第1项数值").fill("1.2")
    page.get_by_label("第1项生效日期").fill("2022-01-01")
    page.screenshot(path=ARTIFACTS / "simulations-form.png", full_page=True)
    page.get_by_role("button", name="开始试算").click()
    expect(page.locator("#sim-status")).to_have_attribute("data-status", "done", timeout=90_000)  # the page refreshes itself
    headline = page.locator("#headline")
    expect(headline).to_have_text(re.compile(r"最低生活保障.*万元|不变"))
    page.screenshot(path=ARTIFACTS / "simulation-briefing.png", full_page=True)
    with page.expect_download() as got:
        page.get_by_role("link", name="新纳入与退出各项目的户（成员）名单").click()
    download = got.value
    assert download.failure() is None
    assert Path(download.path()).read_text(encoding="utf-8").startswith('"household_id"')
    with ctx.expect_page() as opened:
        page.get_by_role("link", name="完整简报").click()
    report = opened.value
    report.wait_for_load_state()
    expect(report.locator("h1")).to_contain_text("城市低保标准提高20%")
    report.screenshot(path=ARTIFACTS / "simulation-report.png", full_page=False)
    ctx.close()


def test_a_form_post_without_its_csrf_token_is_refused(served, browser):
    """A page of another site could make the browser post a form with the session cookie, but not with
    the session's token: the post is refused and nothing is done (the person stays signed in)."""
    url, _keys = served
    ctx = _signed_in(browser, url, "和平区经办")
    page = ctx.new_page()
    page.goto(f"{url}/policy")
    status = page.evaluate("async () => (await fetch('/logout', {method: 'POST', body: new URLSearchParams()})).status")
    assert status == 403
    forged = page.evaluate(
        "async () => (await fetch('/logout', {method: 'POST', body: new URLSearchParams({csrf_token: 'x'})})).status"
    )
    assert forged == 403
    page.goto(f"{url}/")
    expect(page.locator("header")).to_contain_text("和平区经办")
    ctx.close()
