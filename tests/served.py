"""`jiuzhu serve` as a real process on a free loopback port, for the tests that need one."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

JIUZHU = str(Path(sys.executable).with_name("jiuzhu"))
# what a developer's shell may hold that would point the service elsewhere
_FOREIGN_ENV = ("DATABASE_URL", "JIUZHU_WRITER_SOCKET", "JIUZHU_MONITOR_SOCKET")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """``own_session``: the service gets a process group of its own, so that ``kill`` can SIGKILL
    all of it at once (server, workers, writer, monitor)."""

    def __init__(self, data_dir: Path, workers: int = 2, own_session: bool = False, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.own_session = own_session
        env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
        self.proc = subprocess.Popen(
            [JIUZHU, "serve", "--port", str(self.port), "--workers", str(workers), "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=own_session,
        )
        self.lines: list[str] = []

    def admin_key(self, timeout: float = 30, required: bool = True) -> str | None:
        """The admin key printed on a first start; None (when not ``required``) if the service
        started without printing one."""
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            self.lines.append(line)
            m = re.search(r"JIUZHU_ADMIN_KEY=(jzk_\S+)", line)
            if m:
                return m.group(1)
            if "jiuzhu 服务" in line:
                if not required:
                    return None
                break
        raise AssertionError("no admin key printed:\n" + self.output())

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError("server not ready:\n" + self.output())

    def kill(self) -> None:
        assert self.own_session
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def exit_status(self, timeout: float = 60) -> int | None:
        """For a service expected to refuse to start: its exit status, or None (and it is killed) if it
        is still running after ``timeout``."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            if self.own_session:
                os.killpg(self.proc.pid, signal.SIGKILL)
            else:
                self.proc.kill()
            self.proc.wait(30)
            return None

    def stop(self, timeout: float = 45) -> int | None:
        """SIGTERM and wait; killed if it does not stop in time. Returns the exit status."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                if self.own_session:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                else:
                    self.proc.kill()

    def output(self) -> str:
        if self.proc.poll() is not None and self.proc.stdout:
            self.lines.append(self.proc.stdout.read())
        return "".join(self.lines)
