"""One reform simulation, run in a child process of a worker (see ``api.simulations.runner``).

A process rather than a thread of the worker: the simulation is seconds to minutes of
CPU and up to gigabytes of memory. In its own process it does not hold the worker's
GIL (window requests keep their latency), runs at a lower CPU priority, gives its
memory back when it ends, can be stopped at once, and if it is killed (out of memory)
the worker survives and records the failure.

It is a fresh interpreter (``python -m api.simulations.child FD``, not a
multiprocessing fork or spawn): nothing of the server process is inherited or
re-imported. It reads its job from stdin as JSON, the worker's settings with it
(``"settings"``: never its environment, which holds no secrets), and reports on file descriptor FD,
one JSON line per message: ``["progress", households_done]``, then either
``["done", result, files]`` or ``["failed", errors]``. Its working directory is the
populations directory, so the population is named, not given as a server path, in
its results and briefing.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import logging
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import orjson

from api.core.config import Settings
from engine.batch.fanout import Cluster
from engine.batch.partitions import find_partitions

# What a finished simulation offers under GET /v1/simulations/{id}/files/{name}: nothing else is served.
OUTPUT_FILES: dict[str, tuple[str, str]] = {
    "report.html": ("text/html; charset=utf-8", "简报：人均收入分布与新旧标准、各项目支出变化（自包含 HTML）"),
    "gains_losses.csv": ("text/csv; charset=utf-8", "新纳入与退出各项目的户（成员）名单"),
    "changes.parquet": ("application/vnd.apache.parquet", "全部变化明细（含金额），Parquet"),
    "counts.csv": ("text/csv; charset=utf-8", "各项目、各状态的户（人）数：基线与改革后"),
    "costs.csv": ("text/csv; charset=utf-8", "各项目每月、每年支出及变化"),
    "summary.json": ("application/json", "汇总（与本接口返回的 result 相同）"),
    "reform.yaml": ("application/yaml; charset=utf-8", "所运行的改革方案文件"),
}
PART_SIZE = 250_000  # households per part: progress moves in steps of this size
NICENESS = 10  # below the workers: a simulation takes the CPU the window requests leave

log = logging.getLogger("jiuzhu.api.simulations")


class _Channel:
    """JSON lines to the worker on an inherited file descriptor."""

    def __init__(self, fd: int):
        self._f = os.fdopen(fd, "wb")  # buffered: a result larger than the pipe is written whole

    def send(self, msg: tuple) -> None:
        self._f.write(orjson.dumps(msg) + b"\n")
        self._f.flush()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._f.close()


def _die_with_parent(parent: int) -> None:
    """If the worker is killed outright, do not run on unobserved (Linux: PR_SET_PDEATHSIG)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the line above took effect
        os._exit(1)


def main(argv: list[str]) -> None:
    conn = _Channel(int(argv[0]))
    spec = orjson.loads(sys.stdin.buffer.read())
    _die_with_parent(spec["parent"])
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from api.simulations.request import reform_errors
    from engine.batch.reform import ReformError
    from engine.batch.tables import PopulationError

    try:
        result, files = _run(conn, spec)
        conn.send(("done", result, files))
    except ReformError as e:  # the rules changed since the reform was checked
        conn.send(("failed", reform_errors(str(e))))
    except PopulationError as e:
        conn.send(("failed", population_errors(e)))
    except FileNotFoundError as e:
        conn.send(("failed", [_error("population", f"人口数据不可读：{e}", f"population not readable: {e}", "population_invalid")]))
    except Exception as e:
        log.exception("simulation %s failed", spec["job_id"])
        conn.send(("failed", [_error("(job)", f"试算出错，已记录日志：{type(e).__name__}", f"simulation failed (logged): {type(e).__name__}", "internal")]))
    finally:
        conn.close()


def _error(field: str, zh: str, en: str, code: str) -> dict:
    from api.core.errors import error_item

    return error_item(field, zh, en, code)


def population_errors(e) -> list[dict]:
    out = []
    for err in e.errors:
        field = err.file + (f"[{err.row}]" if err.row else "") + (f".{err.column}" if err.column else "")
        out.append(_error(f"population:{field}", err.zh, err.en, "population_invalid"))
    if e.total > len(e.errors):
        more = e.total - len(e.errors)
        out.append(_error("population", f"另有 {more} 处错误未列出", f"{more} more errors not listed", "population_invalid"))
    return out


def settings_of(spec: dict) -> Settings:
    """The worker's settings, as it sent them (whatever this process's environment says)."""
    return Settings.from_child(orjson.dumps(spec["settings"]))


def _run(conn, spec: dict) -> tuple[dict, dict[str, int]]:
    from api.simulations.outputs import mask_outputs
    from engine import Engine
    from engine.batch import simulate
    from engine.batch.reform import load_reform
    from engine.book.rules import default_root, load_rulebook

    job_dir = Path(spec["job_dir"])
    out = job_dir / "out"
    tmp = job_dir / "tmp"
    shutil.rmtree(out, ignore_errors=True)  # a re-run after an interruption starts clean
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    # The reformed copy of rules/ and policies/ (engine.batch.reform) goes into the job's own directory.
    tempfile.tempdir = str(tmp)
    try:
        home = Path(spec["home"]) if spec.get("home") else (settings_of(spec).home or default_root())
        engine = Engine(load_rulebook(home))
        reform = load_reform(job_dir / "input" / "reform.yaml")
        _count_parts(simulate, conn)
        as_of = spec.get("as_of")
        result = simulate.run_simulation(
            Path(spec["population"]),
            reform,
            as_of=dt.date.fromisoformat(as_of) if as_of else None,
            out_dir=out,
            engine=engine,
            home=home,
            part_size=PART_SIZE,
            cluster=_cluster(settings_of(spec), Path(spec["population"])),
        )
        d = result.to_dict()
        d["files"] = {k: Path(v).name for k, v in d["files"].items()}
        d["reform"]["file"] = "reform.yaml"
        (out / "summary.json").write_bytes(orjson.dumps(d, option=orjson.OPT_INDENT_2))
        shutil.copyfile(job_dir / "input" / "reform.yaml", out / "reform.yaml")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    mask_outputs(out, OUTPUT_FILES)
    files = {name: (out / name).stat().st_size for name in OUTPUT_FILES if (out / name).is_file()}
    return d, files  # stored with ID numbers masked (SimulationStore.finish)


def _cluster(settings: Settings, population: Path) -> Cluster | None:
    """The configured Dask scheduler, for a partitioned population (an unpartitioned one runs here)."""
    if settings.dask_scheduler and find_partitions(population):
        return Cluster(address=settings.dask_scheduler)
    return None


def _count_parts(simulate, conn) -> None:
    """Report households as each part of the population is finished.

    ``run_simulation`` has no progress hook; it reads the population through
    ``Source``, so this process (and only this one) swaps in a subclass that counts
    the parts as they are consumed. Without it, progress is simply not reported.
    """
    base = getattr(simulate, "Source", None)
    if base is None:
        return

    class CountingSource(base):
        done = 0

        def _report(self, n: int) -> None:
            CountingSource.done += n
            conn.send(("progress", CountingSource.done))

        def parts(self, *a, **kw):
            for part in super().parts(*a, **kw):
                yield part
                self._report(part.hh.num_rows)  # runs when the next part is asked for: this one is evaluated

        def jsonl_parts(self, *a, **kw):
            for parsed, first in super().jsonl_parts(*a, **kw):
                yield parsed, first
                self._report(len(parsed))

    simulate.Source = CountingSource


if __name__ == "__main__":
    main(sys.argv[1:])
