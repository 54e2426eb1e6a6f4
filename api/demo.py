"""`make demo`, second half: start the service, evaluate the example household over HTTP, stop.

Runs `jiuzhu serve` as a real process on a loopback port with a throw-away data
directory, shows the admin key printed on first start, creates a window key with
`jiuzhu keys create`, posts the example household, reads the record back, and
shows how bad input is refused. Non-interactive; stops the service at the end.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "liaoning_shenyang_family.json"
JIUZHU = str(Path(sys.executable).with_name("jiuzhu"))
STATUS = {"eligible": "符合", "ineligible": "不符合", "gradual_exit": "渐退", "needs_info": "需补充材料"}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _say(title: str) -> None:
    print(f"\n== {title}", flush=True)


def main() -> int:
    data = tempfile.mkdtemp(prefix="jiuzhu-demo-")
    port = _port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "JIUZHU_WRITER_SOCKET")}
    cmd = [JIUZHU, "serve", "--port", str(port), "--workers", "2", "--data-dir", data]
    _say(f"启动服务 / start the service: jiuzhu serve --port {port} --data-dir {data}")
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        admin = None
        assert server.stdout is not None
        for line in server.stdout:
            print("  | " + line.rstrip(), flush=True)
            m = re.search(r"JIUZHU_ADMIN_KEY=(jzk_\S+)", line)
            admin = m.group(1) if m else admin
            if "jiuzhu 服务" in line:
                break
        if admin is None:
            print("服务未打印管理员密钥 / no admin key printed", file=sys.stderr)
            return 1
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                print("服务未就绪 / service not ready", file=sys.stderr)
                return 1
            time.sleep(0.2)
        print(f"  就绪 / ready: GET {base}/readyz -> 200；接口文档 / API docs: {base}/docs")

        _say("创建窗口密钥 / create a window key: jiuzhu keys create --role window --name 城关镇窗口")
        made = subprocess.run(
            [JIUZHU, "keys", "create", "--role", "window", "--name", "城关镇窗口", "--data-dir", data],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        window = made.stdout.strip()
        print(f"  {window[:10]}…（{made.stderr.strip()}）")

        with httpx.Client(base_url=base, timeout=30) as c:
            _say(f"评估示例家庭 / evaluate: POST /v1/evaluate  < {EXAMPLE.relative_to(ROOT)}")
            r = c.post("/v1/evaluate", content=EXAMPLE.read_bytes(), headers={"Authorization": f"Bearer {window}"})
            det = r.json()
            print(f"  HTTP {r.status_code}  determination_id={det['determination_id']}  recorded_at={det['recorded_at']}")
            hh = det["household"]
            print(
                f"  计入成员 {'、'.join(hh['counted_members'])}；人均收入 {hh['per_capita_income']} 元；低保标准 {hh['dibao_standard']} 元"
            )
            for p in det["programs"]:
                who = f"[{p['members'][0]}]" if p["scope"] == "member" else ""
                amount = f"每月 {p['monthly_amount']} 元" if p["monthly_amount"] else ""
                print(f"  {p['name']}{who}: {STATUS[p['status']]} {amount}")
                decision = next((r for r in reversed(p["reasons"]) if r.get("kind") == "decision"), p["reasons"][-1])
                print(f"      {decision['text']}")

            _say("认定记录 / the record: GET /v1/determinations/{id}（身份证号脱敏保存 / ID number stored masked）")
            rec = c.get(f"/v1/determinations/{det['determination_id']}", headers={"Authorization": f"Bearer {admin}"}).json()
            print(f"  调用方 caller: {rec['caller']['name']}（{rec['caller']['role']}）；规则版本 {rec['ruleset_version'][:19]}…")
            print(f"  members[0].id_number = {rec['input']['members'][0]['id_number']}")

            _say("输入有误时 / bad input: 422，逐项说明（中英文）")
            bad = {"household_id": "demo-bad", "locality": "210102", "as_of": "2021-08-01", "area": "urban",
                   "members": [{"id": "p1", "relation": "head", "birth_date": "2030-01-01"}]}  # fmt: skip
            r = c.post("/v1/evaluate", json=bad, headers={"Authorization": f"Bearer {window}"})
            for e in r.json()["errors"]:
                print(f"  HTTP {r.status_code}  {e['message']}")

            _say("没有密钥 / no key: 401；角色不符 / wrong role: 403")
            print(f"  POST /v1/evaluate（无密钥）-> {c.post('/v1/evaluate', json=bad).status_code}")
            print(f"  GET /v1/keys（窗口密钥）-> {c.get('/v1/keys', headers={'Authorization': f'Bearer {window}'}).status_code}")
        return 0
    finally:
        _say("停止服务 / stop the service")
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(45)
        except subprocess.TimeoutExpired:
            server.kill()
            code = server.wait()
        print(f"  exit {code}")
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
