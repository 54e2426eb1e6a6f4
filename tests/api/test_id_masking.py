"""No unmasked resident ID number anywhere: planted in every field a client controls, then searched for
in every column of every table and in every log line; and masking never merges two households.

The test finds ID numbers on its own (its own check digit and pattern), so it runs, and fails, on code
without ``engine.schema.masking``.
"""

from __future__ import annotations

import copy
import io
import logging
import os
import re
import subprocess
import sys
import zlib
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from monitor.helpers import WORKER  # the low-wage worker household the monitoring tests register
from simulation_helpers import EXAMPLE_REFORM, POPULATION, ROOT, configured, make_populations, wait_until
from sqlalchemy import create_engine, inspect, select, text

from api.app import create_app
from api.auth.keys import Role

JIUZHU = str(Path(sys.executable).with_name("jiuzhu"))
EXAMPLE = orjson.loads((ROOT / "examples" / "liaoning_shenyang_family.json").read_bytes())
_W = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
# Any 18-character ID number, also right after letters: a found one is checked for its check digit.
_ANY_ID = re.compile(r"(?<!\d)\d{17}(?:[Xx]|\d(?!\d))")
# Columns that hold hex digests (sha256, HMAC) or a secret: chance runs of digits there are no ID numbers.
_DIGEST_COLUMNS = {"request_hash", "idempotency_key", "household_key", "key", "secret_hash", "value"}


def _check(first17: str) -> str:
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, _W, strict=True)) % 11]


def _valid(s: str) -> bool:
    return _check(s[:17]) == s[17].upper()


def _ids(n: int, birth: str = "19700101", x_only: bool = False) -> list[str]:
    """``n`` distinct valid ID numbers born on ``birth`` (with ``x_only``: each ending in X)."""
    out = []
    seq = 0
    while len(out) < n:
        first = f"210102{birth}{seq:03d}"
        seq += 1
        c = _check(first)
        if not x_only or c == "X":
            out.append(first + c)
    return out


class Planted:
    """Distinct ID numbers, each planted once; ``all`` is what must never be found."""

    def __init__(self):
        pool = iter(_ids(40, "19700101"))
        xs = iter(_ids(10, "19650707", x_only=True))
        self.all: list[str] = []
        self._pool, self._xs = pool, xs

    def one(self) -> str:
        v = next(self._pool)
        self.all.append(v)
        return v

    def lower_x(self) -> str:
        v = next(self._xs).lower()
        self.all.append(v)
        return v

    def born(self, birth: str) -> str:
        v = next(x for x in _ids(len(self.all) + 1, birth) if x not in self.all)
        self.all.append(v)
        return v


def _leaks(text_: str, planted: list[str], digests: bool = False) -> list[str]:
    low = text_.lower()
    found = [p for p in planted if p.lower() in low]
    if not digests:
        found += [m.group() for m in _ANY_ID.finditer(text_) if _valid(m.group())]
    return found


def _cell(column: str, value) -> str:
    if isinstance(value, bytes | memoryview):
        raw = bytes(value)
        try:
            return zlib.decompress(raw).decode()
        except zlib.error:
            return raw.decode("latin-1")
    return "" if value is None else str(value)


def scan_database(url: str, planted: list[str]) -> tuple[dict[str, list[str]], int, int]:
    """Every column of every table: {table.column: leaks}, columns scanned, cells scanned."""
    db = create_engine(url)
    leaks: dict[str, list[str]] = {}
    columns = cells = 0
    try:
        with db.connect() as conn:
            for table in inspect(db).get_table_names():
                names = [c["name"] for c in inspect(db).get_columns(table)]
                columns += len(names)
                for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                    for name, value in zip(names, row, strict=True):
                        cells += 1
                        found = _leaks(_cell(name, value), planted, digests=name in _DIGEST_COLUMNS)
                        if found:
                            leaks.setdefault(f"{table}.{name}", []).extend(found)
    finally:
        db.dispose()
    return leaks, columns, cells


def _file_text(path: Path) -> str:
    if path.suffix == ".parquet":
        return str(pq.read_table(path).to_pylist())
    return path.read_text(encoding="utf-8")


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([JIUZHU, *args], capture_output=True, text=True, env=env, timeout=300)


def _cli_env(settings) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "JIUZHU_DATA_DIR", "JIUZHU_ID_HASH_SECRET")}
    if settings.database_url:
        env["DATABASE_URL"] = settings.database_url
    else:
        env["JIUZHU_DATA_DIR"] = str(settings.data_dir)
    return env




ID_POPULATION = "id-numbers"


@pytest.fixture(scope="module")
def populations(tmp_path_factory):
    """The test populations, and the synthetic one again with resident ID numbers as household and member ids."""
    root = make_populations(tmp_path_factory.mktemp("populations"))
    (root / ID_POPULATION).mkdir()
    households = pq.read_table(root / POPULATION / "households.parquet").column("household_id").to_pylist()
    ids = dict(zip(households, _ids(len(households), "19990909"), strict=True))
    for name in ("households.parquet", "members.parquet"):
        t = pq.read_table(root / POPULATION / name)
        old = t.column("household_id").to_pylist()
        t = t.set_column(t.schema.get_field_index("household_id"), "household_id", pa.array([ids[h] for h in old], pa.string()))
        if "member_id" in t.schema.names:  # "成员" and the household's number: an ID number inside Chinese text
            members = [f"成员{ids[h]}{m}" for h, m in zip(old, t.column("member_id").to_pylist(), strict=True)]
            t = t.set_column(t.schema.get_field_index("member_id"), "member_id", pa.array(members, pa.string()))
        pq.write_table(t, root / ID_POPULATION / name)
    return root


def test_planted_id_numbers_are_found_nowhere_in_the_database_or_the_log(db_settings, populations, tmp_path, engine, caplog):
    caplog.set_level(logging.INFO)
    settings = configured(db_settings, populations, tmp_path)
    from fastapi.testclient import TestClient

    P = Planted()
    app = create_app(settings, rules=engine)
    with TestClient(app) as c:
        admin = {"Authorization": "Bearer " + app.state.repo.create_key("管理员", Role.ADMIN)[1]}
        # -- keys: the name of a key is copied into every record it makes
        r = c.post("/v1/keys", json={"name": "城关镇窗口" + P.one(), "role": "window"}, headers=admin)
        assert r.status_code in (200, 201), r.text
        window = {"Authorization": "Bearer " + r.json()["key"]}
        r = c.post("/v1/keys", json={"name": "经办" + P.one(), "role": "caseworker"}, headers=admin)
        worker = {"Authorization": "Bearer " + r.json()["key"]}
        r = c.post("/v1/keys", json={"name": P.one() + "政策", "role": "policy"}, headers=admin)
        policy = {"Authorization": "Bearer " + r.json()["key"]}

        # -- one household: ids after Latin letters, with a lower-case x, inside Chinese; an ID-number key
        hh = copy.deepcopy(EXAMPLE)
        hh["household_id"] = "abc" + P.lower_x()
        hh["members"][0]["id_number"] = P.born("19560501")
        hh["members"][0]["id"] = "成员" + P.one() + "号"
        hh["members"][1]["id"] = P.one()
        r = c.post("/v1/evaluate", json=hh, headers={**window, "Idempotency-Key": P.one()})
        assert r.status_code == 200, r.text
        again = c.post("/v1/evaluate", json=hh, headers={**window, "Idempotency-Key": P.all[-1]})
        assert again.headers.get("Idempotent-Replayed") == "true"  # still found by its keyed hash
        r = c.get(f"/v1/households/{hh['household_id']}/determinations", headers=worker)
        assert len(r.json()["determinations"]) == 1
        assert c.get(f"/v1/determinations/{r.json()['determinations'][0]['determination_id']}", headers=worker).status_code == 200

        # -- a batch: an answered household and refused ones (an ID number as an unknown field's name)
        good = copy.deepcopy(EXAMPLE)
        good["household_id"] = P.one()
        good["members"][2]["id"] = "p" + P.lower_x()
        bad = copy.deepcopy(EXAMPLE)
        bad["household_id"] = P.one()
        bad["members"][0][P.one()] = "x"
        bad2 = {"household_id": "B" + P.one(), P.one(): 1}
        r = c.post("/v1/evaluate/batch", json={"households": [good, bad, bad2]}, headers={**window, "Idempotency-Key": "k" + P.one()})
        assert r.status_code == 200 and r.json()["refused"] == 2, r.text
        assert len(c.get(f"/v1/households/{good['household_id']}/determinations", headers=worker).json()["determinations"]) == 1

        # -- refused requests: their paths are logged
        assert c.get(f"/v1/households/{P.one()}/determinations").status_code == 401
        assert c.get(f"/v1/households/HH{P.lower_x()}/determinations", headers=window).status_code == 403
        assert c.get(f"/v1/determinations/{P.one()}", headers=worker).status_code == 404

        # -- monitoring: household, member, event ids, a birth's new member, notes, a member moving in
        hid = "LN" + P.one()
        head = P.one()
        rec = copy.deepcopy(WORKER)
        rec["members"][0]["id"] = head
        rec["members"][0]["id_number"] = P.born("19800301")
        reg = {"household_id": hid, "type": "register", "date": "2021-08-01", "household": rec, "event_id": P.one(),
               "note": "登记" + P.one() + "abc"}
        r = c.post("/v1/events", json=reg, headers=worker)
        assert r.status_code == 200, r.text
        baby = P.one()
        events = [
            {"household_id": hid, "type": "job_lost", "date": "2021-09-01", "member": head, "event_id": "e" + P.lower_x()},
            {"household_id": hid, "type": "birth", "date": "2021-09-05", "member": baby, "note": P.one()},
            {"household_id": hid, "type": "hospitalisation", "date": "2021-09-10", "member": baby, "cost": "100.00"},
            {"household_id": hid, "type": "member_moved_in", "date": "2021-09-20",
             "member_record": {**WORKER["members"][0], "id": "迁入" + P.one(), "relation": "spouse",
                               "id_number": P.born("19800301")}},
            {"household_id": hid, "type": "death", "date": "2021-09-21", "member": P.one()},  # refused: unknown member
        ]
        r = c.post("/v1/events", json={"events": events}, headers=worker)
        assert r.status_code == 200, r.text
        assert [x["status"] for x in r.json()["results"]] == ["recorded"] * 4 + ["refused"]
        alerts = c.get("/v1/alerts", params={"household_id": hid}, headers=worker).json()["alerts"]
        assert alerts, "the job_lost event raises alerts"
        aid = alerts[0]["alert_id"]
        assert c.post(f"/v1/alerts/{aid}/acknowledge", json={"note": "已联系" + P.one()}, headers=worker).status_code == 200
        assert c.post(f"/v1/alerts/{aid}/close", json={"note": P.lower_x() + "已处理"}, headers=worker).status_code == 200

        # -- a simulation: the reform's name, description and comments
        reform = yaml.safe_load(EXAMPLE_REFORM.read_text(encoding="utf-8"))
        reform["name"] = "改革" + P.one()
        reform["description"] = "说明 " + P.one()
        reform_text = "# 起草人 " + P.one() + "\n" + yaml.safe_dump(reform, allow_unicode=True)
        r = c.post("/v1/simulations", json={"population": ID_POPULATION, "reform": reform_text},
                   headers={**policy, "Idempotency-Key": P.one(), "Prefer": "wait=60"})
        assert r.status_code in (200, 201, 202), r.text
        done = wait_until(c, r.headers["Location"], policy)
        assert done["status"] == "done"
        # the files as a caller downloads them (they are kept in the database, not in the data directory)
        downloaded = tmp_path / "downloaded"
        downloaded.mkdir()
        for f in done["files"]:
            (downloaded / f["name"]).write_bytes(c.get(f["href"], headers=policy).content)

    # -- the command line: keys, a replay (a new household, and an event for the one registered above), alerts
    env = _cli_env(settings)
    r = _cli("keys", "create", "--role", "window", "--name", "命令行" + P.one(), env=env)
    assert r.returncode == 0, r.stderr
    cli_hid = P.one()
    cli_rec = copy.deepcopy(WORKER)
    cli_rec["members"][1]["id"] = P.one()
    lines = [
        {"household_id": cli_hid, "type": "register", "date": "2021-08-01", "household": cli_rec, "note": "x" + P.one()},
        {"household_id": cli_hid, "type": "job_lost", "date": "2021-09-01", "member": "p1", "event_id": P.one()},
        {"household_id": hid, "type": "hospitalisation", "date": "2021-10-01", "member": baby, "cost": "50.00"},
    ]
    events_file = tmp_path / "events.jsonl"
    events_file.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    r = _cli("monitor", "replay", str(events_file), "--workers", "1", env=env)
    assert r.returncode == 0, r.stderr
    assert "记录 3" in r.stdout, r.stdout  # the API's household (and its baby) found again by another process
    listed = orjson.loads(_cli("alerts", "--json", "--household", cli_hid, env=env).stdout)
    assert listed
    assert _cli("alerts", "ack", listed[0]["alert_id"], "--note", "命令行" + P.one(), env=env).returncode == 0

    leaks, columns, cells = scan_database(settings.url, P.all)
    files = [f for f in (*settings.simulations_path.rglob("*"), *downloaded.rglob("*")) if f.is_file() and f.suffix in (".csv", ".html", ".json", ".yaml", ".parquet")]
    file_leaks = {str(f): x for f in files if (x := _leaks(_file_text(f), P.all))}
    gains = next(f for f in files if f.name == "gains_losses.csv").read_text(encoding="utf-8")
    assert "********" in gains  # households of the population are listed, masked
    log_lines = [logging.Formatter("%(levelname)s %(name)s: %(message)s").format(rec) for rec in caplog.records]
    log_leaks = [line for line in log_lines if _leaks(line, P.all)]
    print(f"\nplanted {len(P.all)} ID numbers; scanned {columns} columns ({cells} cells), {len(files)} files, {len(log_lines)} log lines")
    print(f"unmasked in columns {sorted(leaks)}, in {len(file_leaks)} files, in {len(log_leaks)} log lines")
    assert any("refused GET" in line for line in log_lines)
    assert not leaks, leaks
    assert not file_leaks, file_leaks
    assert not log_leaks, log_leaks


def test_two_households_whose_ids_mask_alike_keep_separate_histories(db_client):
    a, b = "21010219560501123X", "21010219300101123X"
    assert _valid(a) and _valid(b) and a[:6] + a[-4:] == b[:6] + b[-4:]
    repo = db_client.app.state.repo
    h = {"Authorization": "Bearer " + repo.create_key("窗口", Role.ADMIN)[1]}
    for hid, n in ((a, 2), (b, 1)):
        hh = copy.deepcopy(EXAMPLE)
        hh["household_id"] = hid
        for _ in range(n):
            assert db_client.post("/v1/evaluate", json=hh, headers=h).status_code == 200
    assert len(db_client.get(f"/v1/households/{a}/determinations", headers=h).json()["determinations"]) == 2
    assert len(db_client.get(f"/v1/households/{b}/determinations", headers=h).json()["determinations"]) == 1
    # the same person written with a lower-case x
    assert len(db_client.get(f"/v1/households/{a.lower()}/determinations", headers=h).json()["determinations"]) == 2
    # the masked text is no key: it finds neither
    assert db_client.get("/v1/households/210102********123X/determinations", headers=h).json()["determinations"] == []


def test_two_monitored_households_whose_ids_mask_alike_stay_two(client, keys):
    a, b = "21010219560501123X", "21010219300101123X"
    h = {"Authorization": "Bearer " + keys["caseworker"]}
    for hid in (a, b):
        ev = {"household_id": hid, "type": "register", "date": "2021-08-01", "household": copy.deepcopy(WORKER)}
        assert client.post("/v1/events", json=ev, headers=h).status_code == 200
    # the second register is a new household, not an update of the first
    ev = {"household_id": b, "type": "job_lost", "date": "2021-09-01", "member": "p1"}
    assert client.post("/v1/events", json=ev, headers=h).json()["seq"] == 2
    db = create_engine(client.app.state.settings.url)
    with db.connect() as conn:
        stored = [r[0] for r in conn.execute(text("SELECT household_id FROM monitor_households"))]
    db.dispose()
    assert len(stored) == 2 and len(set(stored)) == 2 and not _leaks(" ".join(stored), [a, b])
    for hid in (a, b):
        assert all(x["household_id"] in stored for x in client.get("/v1/alerts", params={"household_id": hid}, headers=h).json()["alerts"])


@pytest.mark.parametrize(
    "line",
    [
        "refused GET /v1/households/21010219560501123X/determinations",
        "abc21010219560501123x def",
        "成员21010219560501123X号",
    ],
)
def test_the_log_masks_messages_and_arguments_also_of_uvicorns_access_log(line, caplog):
    from uvicorn.logging import AccessFormatter

    import api.app  # noqa: F401  (installs the masking with the app's logging)
    from api.app import _configure_logging

    _configure_logging()
    idn = re.search(r"\d{17}[\dXx]", line).group()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False))
    access = logging.getLogger("uvicorn.access.test-masking")
    access.addHandler(handler)
    try:
        access.warning('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", "/" + line, "1.1", 401)
    finally:
        access.removeHandler(handler)
    caplog.set_level(logging.INFO, logger="jiuzhu.test")
    logging.getLogger("jiuzhu.test").info("seen %s", line)
    logging.getLogger("jiuzhu.test").info(line)
    try:
        raise ValueError(line)
    except ValueError:
        logging.getLogger("jiuzhu.test").exception("failed")
    formatted = [logging.Formatter("%(message)s").format(r) for r in caplog.records]
    text_ = out.getvalue() + "\n".join(formatted)
    assert "401" in out.getvalue() and "GET" in out.getvalue()
    assert idn.lower() not in text_.lower() and "210102********123X" in text_


def test_a_stored_database_column_is_never_read_back_unmasked_by_select(db_client):
    """The masked household_id is what the determination record shows."""
    hh = copy.deepcopy(EXAMPLE)
    hh["household_id"] = "abc21010219560501123x"
    h = {"Authorization": "Bearer " + db_client.app.state.repo.create_key("窗口", Role.ADMIN)[1]}
    r = db_client.post("/v1/evaluate", json=hh, headers=h)
    rec = db_client.get(f"/v1/determinations/{r.json()['determination_id']}", headers=h).json()
    assert rec["household_id"] == "abc210102********123X"
    db = create_engine(db_client.app.state.settings.url)
    with db.connect() as conn:
        (row,) = conn.execute(select(text("household_id, household_key")).select_from(text("determinations")))
    db.dispose()
    assert row[0] == "abc210102********123X" and len(row[1]) == 64


def test_the_secret_is_made_once_and_shared_by_every_replica_on_the_database(db_settings):
    import dataclasses
    from concurrent.futures import ThreadPoolExecutor

    from api.storage.db import make_engine, migrate
    from api.storage.id_secret import load_id_secret

    engines = [make_engine(db_settings) for _ in range(4)]  # as four replicas starting at once
    try:
        migrate(engines[0])
        with ThreadPoolExecutor(4) as pool:
            secrets_ = list(pool.map(lambda e: load_id_secret(e, db_settings), engines))
        assert len(set(secrets_)) == 1 and len(secrets_[0]) == 64
        assert load_id_secret(engines[0], dataclasses.replace(db_settings, id_hash_secret="configured")) == b"configured"
        with engines[0].connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM deployment_secrets")).scalar_one() == 1
    finally:
        for e in engines:
            e.dispose()
