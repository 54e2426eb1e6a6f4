"""Runs queued reform simulations, outside the request path, in every worker process.

Each worker has ``simulation_concurrency`` runner threads. A thread claims the oldest
queued job from the database (``SimulationStore.claim``: at most
``simulation_concurrency`` jobs run at once across all workers), starts it in a child
process (``api.simulations.child``), records its progress and a heartbeat every few
seconds, then its result or its errors. A POST in this worker wakes the threads at
once; jobs submitted in another worker are picked up within ``simulation_poll_seconds``.

A job whose runner stops beating (its worker was killed, the machine restarted) is
found by the next claim in any worker and re-queued, or failed after
``MAX_ATTEMPTS``; a worker that stops cleanly ends its child and re-queues its job.
So no job stays "running" forever.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson

from api.core.config import Settings
from api.core.errors import error_item
from api.simulations.files import SimulationFiles
from api.simulations.request import write_reform
from api.simulations.store import SimulationStore

log = logging.getLogger("jiuzhu.api.simulations")


class SimulationRunner:
    def __init__(self, settings: Settings, store: SimulationStore, home: Path, files: SimulationFiles):
        self.settings = settings
        self.store = store
        self.home = home
        self.files = files
        # host:pid, and a token: two apps in one process (tests, an embedding) are still two runners
        self.runner_id = f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"
        self.heartbeat_seconds = max(0.5, min(5.0, settings.simulation_stale_seconds / 4))
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, name=f"jiuzhu-simulations-{i}", daemon=True)
            for i in range(settings.simulation_concurrency)
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def nudge(self) -> None:
        """A job was queued here: look now rather than at the next poll."""
        self._wake.set()

    def close(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    # -- the loop ------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.store.claim(self.runner_id, self.settings.simulation_concurrency, self.settings.simulation_stale_seconds)
            except Exception:
                log.exception("claiming a simulation failed; retrying")
                job = None
            if job is not None:
                try:
                    self._run(job._mapping)
                    _clean_scratch(self.settings.simulations_path / job._mapping["id"])
                except Exception:  # this thread must keep serving the queue
                    log.exception("simulation %s: the runner failed", job._mapping["id"])
                    self._finish(job._mapping["id"], errors=[_error("(job)", "试算运行出错，已记录日志", "the simulation runner failed (logged)")])
                continue
            self._wake.wait(self.settings.simulation_poll_seconds)
            self._wake.clear()

    def _run(self, job) -> None:
        job_id = job["id"]
        started = time.monotonic()
        log.info("simulation %s started: population %s, reform %r, caller %s", job_id, job["population"], job["reform_name"], job["caller_name"])
        job_dir = self.settings.simulations_path / job_id
        try:
            write_reform(job_dir / "input", job["reform_yaml"], orjson.loads(job["rules_json"]))
        except OSError as e:
            log.exception("simulation %s: cannot write its directory", job_id)
            self._finish(job_id, errors=[_error("(job)", f"无法写入试算目录：{e.strerror}", f"cannot write the job's directory: {e.strerror}")])
            return
        spec = {
            "job_id": job_id,
            "parent": os.getpid(),
            "job_dir": str(job_dir),
            "population": job["population"],
            "as_of": job["as_of"].isoformat() if job["as_of"] else None,
            "home": str(self.home),
            "settings": orjson.loads(self.settings.to_child()),  # on stdin: never on a command line
        }
        try:
            proc, fd = self._spawn(spec)
        except OSError as e:
            log.exception("simulation %s: cannot start its process", job_id)
            self._finish(job_id, errors=[_error("(job)", f"无法启动试算进程：{e}", f"cannot start the simulation process: {e}")])
            return
        try:
            outcome = self._watch(job_id, proc, fd)
        finally:
            os.close(fd)
        if outcome is None:  # stopping, or the job was taken from us: nothing more to record
            return
        kind, payload = outcome
        if kind == "done":
            result, files, done = payload
            try:  # the files go where every replica finds them; this worker's scratch is removed after
                staged = self.files.stage(job_id, job_dir / "out", files)
            except OSError as e:
                log.exception("simulation %s: cannot store its files", job_id)
                self._finish(job_id, errors=[_error("(job)", f"无法保存试算文件：{e.strerror}", f"cannot store the simulation's files: {e.strerror}")])
                return
            recorded = self._finish(
                job_id,
                result_json=orjson.dumps(result).decode(),
                files_json=orjson.dumps(files).decode(),
                households_done=done,
                attach=staged.commit,
            )
            if not recorded:
                staged.discard()
            log.info("simulation %s done in %.1f s: %s households", job_id, time.monotonic() - started, result.get("households"))
        else:
            self._finish(job_id, errors=payload)
            log.warning("simulation %s failed after %.1f s: %s", job_id, time.monotonic() - started, payload[0]["message"] if payload else "")

    def _spawn(self, spec: dict) -> tuple[subprocess.Popen, int]:
        """``python -m api.simulations.child FD`` in the populations directory; returns it and our end of its pipe."""
        populations = self.settings.populations_path
        read_fd, write_fd = os.pipe()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "api.simulations.child", str(write_fd)],
                stdin=subprocess.PIPE,
                cwd=populations,
                pass_fds=(write_fd,),
                env=_child_environment(),
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(orjson.dumps(spec))
        proc.stdin.close()
        return proc, read_fd

    def _watch(self, job_id: str, proc: subprocess.Popen, fd: int):
        """Relay the child's messages until it ends; heartbeat meanwhile. None when stopped or taken away."""
        done = recorded = None
        final = None
        buf = b""
        last_beat = time.monotonic()
        deadline = last_beat + self.settings.simulation_timeout_seconds
        while True:
            readable, _, _ = select.select([fd], [], [], 1.0)
            if readable:
                chunk = os.read(fd, 1 << 16)
                if not chunk:  # the child ended (or closed its end)
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    msg = orjson.loads(line)
                    if msg[0] == "progress":
                        done = msg[1]
                    elif msg[0] == "done":
                        final = ("done", (msg[1], msg[2], msg[1].get("households", done)))
                    elif msg[0] == "failed":
                        final = ("failed", msg[1])
            if self._stop.is_set() and final is None:
                self._end(proc)
                self.store.requeue(job_id, self.runner_id)
                log.info("simulation %s re-queued: the service is stopping", job_id)
                return None
            if final is None and time.monotonic() > deadline:  # a job may not hold a slot (and its memory) forever
                self._end(proc)
                limit = f"{self.settings.simulation_timeout_seconds:g}"
                log.warning("simulation %s stopped: over its time limit of %s s", job_id, limit)
                return "failed", [
                    error_item(
                        "(job)",
                        f"试算运行超过时限（{limit}秒），已停止；请缩小人口数据或联系管理员调整 JIUZHU_SIMULATION_TIMEOUT_SECONDS",
                        f"the simulation ran over its time limit ({limit} s) and was stopped; use a smaller population or ask the operator to raise JIUZHU_SIMULATION_TIMEOUT_SECONDS",
                        "timeout",
                    )
                ]
            since = time.monotonic() - last_beat
            if since >= self.heartbeat_seconds or (done != recorded and since >= 1.0):  # progress shows within a second
                last_beat = time.monotonic()
                recorded = done
                try:
                    ours = self.store.heartbeat(job_id, self.runner_id, done)
                except Exception:
                    log.exception("simulation %s: heartbeat failed", job_id)
                    ours = True
                if not ours:
                    log.warning("simulation %s was taken over (no heartbeat in time): stopping this run", job_id)
                    self._end(proc)
                    return None
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            self._end(proc)
            code = proc.returncode
        if final is None:
            why_zh = f"被信号 {-code} 终止（可能内存不足）" if code is not None and code < 0 else f"退出码 {code}"
            why_en = f"killed by signal {-code} (out of memory?)" if code is not None and code < 0 else f"exit code {code}"
            final = ("failed", [_error("(job)", f"试算进程意外退出：{why_zh}", f"the simulation process ended unexpectedly: {why_en}")])
        return final

    @staticmethod
    def _end(proc: subprocess.Popen) -> None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def _finish(self, job_id: str, **kw) -> bool:
        """Record the outcome; whether it was recorded (False: the job is no longer ours, or the database stayed away)."""
        for attempt in range(5):  # the database may be briefly unavailable; the result is worth a retry
            try:
                if not self.store.finish(job_id, self.runner_id, **kw):
                    log.warning("simulation %s: finished, but no longer ours to record", job_id)
                    return False
                return True
            except Exception:
                log.exception("simulation %s: recording the outcome failed (attempt %d)", job_id, attempt + 1)
                if self._stop.wait(2.0 * (attempt + 1)):
                    return False
        return False


def _clean_scratch(job_dir: Path) -> None:
    """What the job's run wrote on this worker's disk: nothing is served from it (see api.simulations.files)."""
    for sub in ("input", "out", "tmp"):
        shutil.rmtree(job_dir / sub, ignore_errors=True)
    with contextlib.suppress(OSError):
        job_dir.rmdir()  # unless a shared store keeps the files there too


def _error(field: str, zh: str, en: str) -> dict:
    return error_item(field, zh, en, "simulation_failed")


# Variables that may hold a secret: the child has its settings from stdin and opens no database.
_SECRET_VARIABLES = frozenset({"DATABASE_URL", "JIUZHU_ID_HASH_SECRET"})


def _child_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SECRET_VARIABLES}
    env["PYTHONPATH"] = _package_root() + os.pathsep + os.environ.get("PYTHONPATH", "")
    return env


def _package_root() -> str:
    """The directory holding the ``api`` package, so the child imports the same code as this process."""
    return str(Path(__file__).resolve().parents[2])
