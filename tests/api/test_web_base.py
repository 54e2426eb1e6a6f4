"""The workbench's frame: pages in Chinese, served with their own assets, behind sign-in."""

from __future__ import annotations


def test_home_page_is_chinese_and_lists_what_the_role_may_open(client, keys):
    r = client.get("/", headers={"X-API-Key": keys["caseworker"]})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in r.text
    assert "新建评估" in r.text and "家庭档案" in r.text
    assert "管理" not in r.text.split("<main")[0]  # a caseworker's menu has no administration


def test_a_browser_without_session_is_sent_to_sign_in_and_back(client):
    r = client.get("/?x=1", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/?x=1"


def test_static_assets_are_served_locally(client):
    r = client.get("/static/app.css")
    assert r.status_code == 200 and "font-family" in r.text
    page = client.get("/", headers={"X-API-Key": "x"})
    assert page.status_code == 401  # a wrong key header is the API's answer, not a redirect
