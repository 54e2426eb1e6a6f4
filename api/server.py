"""The worker processes of `jiuzhu serve`: N uvicorn servers, each on its own SO_REUSEPORT socket.

uvicorn's own supervisor shares one listening socket between workers; whichever
worker wakes first accepts, and long-lived keep-alive connections (a window's
client, a load generator) can all land on one worker while the other idles.
With one socket per worker bound with SO_REUSEPORT, the kernel spreads new
connections over the workers. This module starts the workers, restarts one
that dies, and stops them all on SIGTERM/SIGINT.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time

log = logging.getLogger("jiuzhu.api.server")


def _socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def check_port(host: str, port: int) -> None:
    """Raise OSError now if the address is taken (rather than in every worker)."""
    _socket(host, port).close()


def _worker(host: str, port: int, access_log: bool) -> None:
    import uvicorn

    sock = _socket(host, port)
    config = uvicorn.Config(
        "api.app:create_app",
        factory=True,
        access_log=access_log,
        log_level="info",
        timeout_graceful_shutdown=30,
    )
    uvicorn.Server(config).run(sockets=[sock])


def run_workers(host: str, port: int, workers: int, access_log: bool) -> int:
    """Run the workers until SIGTERM or SIGINT; returns the exit status for `jiuzhu serve`."""
    ctx = multiprocessing.get_context("spawn")
    stopping = threading.Event()

    def start() -> multiprocessing.Process:
        p = ctx.Process(target=_worker, args=(host, port, access_log), name="jiuzhu-worker")
        p.start()
        return p

    def stop(signum, _frame) -> None:
        stopping.set()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    procs = [start() for _ in range(workers)]
    started = {p.pid: time.monotonic() for p in procs}
    status = 0
    try:
        while not stopping.wait(0.5):
            for i, p in enumerate(procs):
                if p.is_alive():
                    continue
                if time.monotonic() - started.get(p.pid, 0) < 5:
                    log.error("worker %s exited at start (%s): stopping", p.pid, p.exitcode)
                    stopping.set()
                    status = 1
                    break
                log.error("worker %s exited (%s): restarting", p.pid, p.exitcode)
                procs[i] = start()
                started[procs[i].pid] = time.monotonic()
    finally:
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGTERM)  # uvicorn finishes the requests in flight
        for p in procs:
            p.join(45)
            if p.is_alive():
                p.kill()
        for s, h in previous.items():
            signal.signal(s, h)
    return status
