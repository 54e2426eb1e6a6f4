"""jiuzhu users create / list / disable: exit codes and messages like jiuzhu keys; the accounts made
here sign in to the pages."""

from __future__ import annotations

from accounts_helpers import sign_in
from click.testing import CliRunner
from fastapi.testclient import TestClient

from api.app import create_app
from api.core.config import Settings
from engine.cli.main import main


def test_create_asks_twice_list_disable(tmp_path, engine, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    runner = CliRunner()
    where = ["--data-dir", str(tmp_path)]
    args = ["users", "create", "--name", "张三", "--role", "caseworker", "--locality", "210102", *where]
    mismatch = runner.invoke(main, args, input="first-password-1\nother-password-2\nfirst-password-1\nfirst-password-1\n")
    assert mismatch.exit_code == 0, mismatch.output
    assert "first-password-1" not in mismatch.output  # typed hidden, never echoed
    assert "已创建账户 张三" in mismatch.stderr and "210102" in mismatch.stderr

    again = runner.invoke(main, args, input="first-password-1\nfirst-password-1\n")
    assert again.exit_code == 2 and "已被使用" in again.stderr
    short = runner.invoke(main, [*args[:3], "李四", *args[4:]], input="short\nshort\n")
    assert short.exit_code == 2 and "密码至少 10 个字符" in short.stderr

    generated = runner.invoke(main, ["users", "create", "--name", "李四", "--role", "window", "--locality", "210100",
                                     "--generate-password", *where])
    assert generated.exit_code == 0, generated.output
    password = generated.stdout.strip()
    assert len(password) == 19 and "只显示这一次" in generated.stderr

    listed = runner.invoke(main, ["users", "list", *where])
    assert listed.exit_code == 0
    assert "张三" in listed.stdout and "李四" in listed.stdout and "caseworker" in listed.stdout
    assert password not in listed.stdout and "argon2" not in listed.stdout

    with TestClient(create_app(Settings(data_dir=tmp_path), rules=engine)) as client:
        assert sign_in(client, "李四", password).status_code == 303
        assert client.get("/", follow_redirects=False).status_code == 200
        disabled = runner.invoke(main, ["users", "disable", "李四", *where])
        assert disabled.exit_code == 0 and "已停用 李四" in disabled.stdout
        assert client.get("/", follow_redirects=False).status_code == 303  # its session ended with it
        assert sign_in(client, "张三", "first-password-1").status_code == 303

    assert runner.invoke(main, ["users", "disable", "王五", *where]).exit_code == 1


def test_typos_exit_2_naming_the_choices(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    runner = CliRunner()
    where = ["--data-dir", str(tmp_path)]
    role = runner.invoke(main, ["users", "create", "--name", "张三", "--role", "casework", "--locality", "210102", *where])
    assert role.exit_code == 2 and "caseworker" in role.output and "window" in role.output
    place = runner.invoke(main, ["users", "create", "--name", "张三", "--role", "caseworker", "--locality", "999999",
                                 "--generate-password", *where])
    assert place.exit_code == 2 and "--locality" in place.stderr
    name = runner.invoke(main, ["users", "create", "--name", "张 三", "--role", "caseworker", "--locality", "210102",
                                "--generate-password", *where])
    assert name.exit_code == 2 and "--name" in name.stderr
    empty = runner.invoke(main, ["users", "list", *where])
    assert empty.exit_code == 2  # no database here yet: the wrong --data-dir, most likely
