"""Benchmark: reading a table population and building the facts' columns (``jiuzhu batch``'s first stages).

Prints figures; asserts nothing. For each part (``--part-size`` households) it times reading
(``Source.parts``: Parquet decoding, member alignment, household-id checks) and building
(``build_part``: validating and converting every column), wall and CPU seconds, best of
``--repeat`` runs. ``--ids`` first writes a copy of the population whose members carry an
``id_number`` (valid, matching ``birth_date``), since ``jiuzhu synth`` writes none, and measures
that too. ``--digest`` prints a hash of every built column (values and dtypes), to compare two
checkouts' columns.

    python benchmarks/bench_read.py [--pop DIR] [--part-size 100000] [--repeat 3] [--ids] [--digest]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])


def with_id_numbers(pop: Path, out: Path) -> Path:
    """``pop`` with an ``id_number`` per member: hukou locality, birth date, a sequence, its check digit."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "households.parquet").unlink(missing_ok=True)
    (out / "households.parquet").symlink_to(pop / "households.parquet")
    mem = pq.read_table(pop / "members.parquet")
    n = mem.num_rows
    loc = pc.fill_null(mem.column("hukou_locality").cast(pa.string()), "210102").to_numpy(zero_copy_only=False)
    birth = mem.column("birth_date").cast(pa.int32()).to_numpy(zero_copy_only=False).astype("datetime64[D]")
    ymd = np.char.replace(np.datetime_as_string(birth, unit="D"), "-", "")
    seq = np.char.zfill((np.arange(n) % 1000).astype(str), 3)
    first = np.char.add(np.char.add(loc.astype(str), ymd), seq)
    digits = np.frombuffer(first.astype("S17").tobytes(), np.uint8).reshape(n, 17) - 48
    check = np.frombuffer(b"10X98765432", np.uint8)[(digits.astype(np.int64) @ _WEIGHTS) % 11]
    full = np.char.add(first.astype("S17"), check.view("S1"))
    mem = mem.append_column("id_number", pa.array(full.astype(str)))
    pq.write_table(mem, out / "members.parquet", row_group_size=512_000)
    return out


def _leaves(part):
    """(name, value) of every leaf of a part's columns, in a fixed order: arrays and scalar fields."""

    def walk(name, x):
        if isinstance(x, dict):
            for k in sorted(x):
                yield from walk(f"{name}[{k}]", x[k])
        elif hasattr(x, "__slots__") and not isinstance(x, np.ndarray):
            for s in sorted(x.__slots__):
                yield from walk(f"{name}.{s}", getattr(x, s))
        else:
            yield name, x

    yield from walk("offsets", part.offsets)
    for side in ("hcols", "mcols"):
        for k, v in sorted(getattr(part, side).items()):
            yield from walk(f"{side}.{k}", v)


def digest(part) -> str:
    h = hashlib.sha256()
    for name, x in _leaves(part):
        if isinstance(x, np.ndarray):
            h.update(f"{name}:{x.shape}".encode())  # values, not dtypes: dtypes() lists those
            h.update(np.ascontiguousarray(x.astype(np.int64) if x.dtype != bool else x).tobytes())
        else:
            h.update(f"{name}={x!r}".encode())
    h.update(str(part.household_ids.arrow().to_pylist()[:50]).encode())
    h.update(str(part.member_ids.arrow().to_pylist()[-50:]).encode())
    return h.hexdigest()[:16]


def dtypes(part) -> str:
    return " ".join(f"{name}:{x.dtype}" for name, x in _leaves(part) if isinstance(x, np.ndarray))


def measure(pop: Path, part_size: int, show_digest: bool) -> dict[str, float]:
    from engine.batch.tables import Source, build_part

    t = {"read": 0.0, "read_cpu": 0.0, "build": 0.0, "build_cpu": 0.0}
    src = Source(pop)
    it = src.parts(part_size)
    digests = []
    while True:
        w, c = time.perf_counter(), time.process_time()
        raw = next(it, None)
        t["read"] += time.perf_counter() - w
        t["read_cpu"] += time.process_time() - c
        if raw is None:
            break
        w, c = time.perf_counter(), time.process_time()
        part = build_part(raw, INTERNER.I, INTERNER.need_h, INTERNER.need_m, None)
        t["build"] += time.perf_counter() - w
        t["build_cpu"] += time.process_time() - c
        if show_digest:
            digests.append(digest(part))
    if show_digest:
        print("  digest", hashlib.sha256("".join(digests).encode()).hexdigest()[:16], "dtypes", dtypes(part))
    return t


def main() -> None:
    global INTERNER
    ap = argparse.ArgumentParser()
    ap.add_argument("--pop", type=Path, default=Path("/work/pop1m"))
    ap.add_argument("--part-size", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ids", action="store_true", help="also a copy of the population with ID numbers")
    ap.add_argument("--digest", action="store_true")
    args = ap.parse_args()

    from engine import default_engine
    from engine.batch.run import BatchEvaluator

    INTERNER = BatchEvaluator(default_engine())
    pops = [("population", args.pop)]
    if args.ids:
        pops.append(("with id_number", with_id_numbers(args.pop, Path(tempfile.gettempdir()) / "bench_read_ids")))
    for label, pop in pops:
        best: dict[str, float] = {}
        for i in range(args.repeat):
            t = measure(pop, args.part_size, args.digest and i == 0)
            best = {k: min(best.get(k, v), v) for k, v in t.items()}
        print(
            f"{label}: read {best['read']:.2f} s (cpu {best['read_cpu']:.2f}) | "
            f"build {best['build']:.2f} s (cpu {best['build_cpu']:.2f}) | "
            f"read+build {best['read'] + best['build']:.2f} s  (best of {args.repeat})"
        )


INTERNER = None

if __name__ == "__main__":
    main()
