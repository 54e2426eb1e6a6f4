"""Signing people in through the real pages, for the accounts tests (HTTP and browser)."""

from __future__ import annotations

import re

from api.auth.keys import Role, Scope
from api.web.session import accounts

PASSWORD = "correct-horse-42"


def make_user(client, name: str, role: str = "caseworker", locality: str = "210102", password: str = PASSWORD):
    return accounts(client.app).create_user(name, Role(role), Scope.of(locality), password)


def login_token(html: str) -> str:
    return re.search(r'name="login_token" value="([^"]+)"', html).group(1)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]*)"', html).group(1)


def sign_in(client, name: str, password: str = PASSWORD, next_path: str = "/"):
    """GET the sign-in form (it sets its login cookie), then POST it; returns the POST's response."""
    form = client.get("/login", params={"next": next_path})
    assert form.status_code == 200, form.text
    return client.post(
        "/login",
        data={"name": name, "password": password, "next": next_path, "login_token": login_token(form.text)},
        follow_redirects=False,
    )
