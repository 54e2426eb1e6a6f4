"""Reading a population holds a bounded amount of memory, whatever its size (issue 17: 5 M households
within 1.5 GB): reading row group after row group must not keep the ones already read."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engine.batch.sources import Source


def test_reading_a_table_batch_by_batch_does_not_keep_what_was_read(tmp_path):
    n = 1_200_000
    rng = np.random.default_rng(1)
    # incompressible columns: each row group is a few MB on disk, as a real population's are
    t = pa.table(
        {"household_id": pa.array(np.char.add("H", np.arange(n).astype(str)))}
        | {f"x{k}": rng.integers(0, 2**62, n) for k in range(4)}
    )
    pq.write_table(t, tmp_path / "households.parquet", row_group_size=50_000, compression="none")
    pq.write_table(pa.table({"household_id": t.column(0)}), tmp_path / "members.parquet", row_group_size=50_000)
    del t
    src = Source(tmp_path)
    held = []
    for i, batch in enumerate(src._batches("households", None, 50_000)):
        if i >= 2:
            held.append(pa.total_allocated_bytes())
        del batch
    assert len(held) > 15
    # flat: the last batches hold no more than the first ones (pre-buffering grew by each row group read)
    assert max(held[-5:]) < min(held[:5]) + 8 * 2**20
