"""The worker processes of `jiuzhu serve`: N uvicorn servers, each on its own SO_REUSEPORT socket.

uvicorn's own supervisor shares one listening socket between workers; whichever
worker wakes first accepts, and long-lived keep-alive connections (a window's
client, a load generator) can all land on one worker while the other idles.
With one socket per worker bound with SO_REUSEPORT, the kernel spreads new
connections over the workers. This module starts the workers, restarts one
that dies, and stops them all on SIGTERM/SIGINT.

The parent binds and listens on every socket before any worker starts, right after checking the port
without SO_REUSEPORT, and hands each socket to its worker (and to the worker that replaces it). So a
second `jiuzhu serve` on the same port is refused by that check at any time, never let in to take a share
of the connections while the first is still starting; and connections queued on a dying worker's socket
wait for its replacement instead of being reset.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time

from api.core.config import Settings

log = logging.getLogger("jiuzhu.api.server")


def _socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def check_port(host: str, port: int) -> None:
    """Raise OSError now if the address is taken (rather than in every worker).

    Bound *without* SO_REUSEPORT: the workers' sockets let any later socket with SO_REUSEPORT (of the same
    user) join their group, so a second `jiuzhu serve` on the same port would start silently and take half
    the connections. A socket without it cannot be bound next to them, so the second service is refused.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a previous run's TIME_WAIT is no conflict
        sock.bind((host, port))


def listen(host: str, port: int, workers: int) -> list[socket.socket]:
    """One listening socket per worker, after checking that no one else listens there (OSError if so)."""
    check_port(host, port)
    socks = []
    for _ in range(workers):
        sock = _socket(host, port)
        sock.listen(2048)
        socks.append(sock)
    return socks


def _worker(sock: socket.socket, settings: Settings) -> None:
    # Only the worker processes serve HTTP: uvicorn and FastAPI are loaded there, not in every `jiuzhu` command.
    import uvicorn

    from api.app import create_app

    config = uvicorn.Config(
        functools.partial(create_app, settings),  # the parent's settings, not this process's environment
        factory=True,
        # The app writes the request lines (api/core/request_log.py: request id, caller, locality) and
        # sets up logging itself (text or JSON): uvicorn's own access log and log config stay off.
        access_log=False,
        log_config=None,
        log_level="info",
        timeout_graceful_shutdown=30,
    )
    uvicorn.Server(config).run(sockets=[sock])


def run_workers(sockets: list[socket.socket], settings: Settings) -> int:
    """Run one worker per socket (see listen()) until SIGTERM or SIGINT; returns the exit status for
    `jiuzhu serve`. Each worker builds its app from ``settings`` (its spawn arguments)."""
    ctx = multiprocessing.get_context("spawn")
    stopping = threading.Event()

    def start(sock: socket.socket) -> multiprocessing.Process:
        p = ctx.Process(target=_worker, args=(sock, settings), name="jiuzhu-worker")
        p.start()
        return p

    def stop(signum, _frame) -> None:
        stopping.set()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    procs = [start(sock) for sock in sockets]
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
                procs[i] = start(sockets[i])
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
