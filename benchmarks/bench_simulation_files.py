"""Simulation files in the database (api/simulations/files.py): time to keep a file, time to read it
back a part at a time, and the most memory a read holds at once.

    .venv/bin/python benchmarks/bench_simulation_files.py [--mib 64] [--database-url postgresql://...]

Without --database-url it uses a temporary SQLite file. The file is random bytes (incompressible,
like the Parquet and CSV outputs as far as the database is concerned).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

from api.core.config import Settings
from api.simulations.files import PART_BYTES, DatabaseFiles
from api.storage.db import make_engine, migrate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=64, help="file size in MiB")
    ap.add_argument("--database-url", default="", help="PostgreSQL URL (default: a temporary SQLite file)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=args.database_url)
        db = make_engine(settings)
        migrate(db)
        out = Path(tmp) / "out"
        out.mkdir()
        (out / "changes.parquet").write_bytes(os.urandom(args.mib << 20))
        files = DatabaseFiles(db)
        job = str(uuid.uuid4())
        started = time.perf_counter()
        staged = files.stage(job, out, ["changes.parquet"])
        with db.begin() as conn:
            staged.commit(conn)
        kept = time.perf_counter() - started

        tracemalloc.start()
        started = time.perf_counter()
        stored = files.open(job, "changes.parquet")
        total = sum(len(part) for part in stored.parts)
        read = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert total == stored.size == args.mib << 20
        print(f"database: {db.dialect.name}; file {args.mib} MiB in parts of {PART_BYTES >> 20} MiB")
        print(f"keep (one transaction): {kept:.2f} s, {args.mib / kept:.0f} MiB/s")
        print(
            f"read back part by part: {read:.2f} s, {args.mib / read:.0f} MiB/s; peak Python memory while reading {peak / (1 << 20):.1f} MiB"
        )
        with db.begin() as conn:
            conn.exec_driver_sql("DELETE FROM simulation_files")
        db.dispose()


if __name__ == "__main__":
    main()
