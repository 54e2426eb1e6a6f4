"""The bulk commands reuse freed memory (engine/batch/allocator.py): Arrow allocates through glibc's
malloc, tuned not to map and unmap every large array. Run in a child process: the setting is process-wide."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_tuning_switches_arrow_to_the_tuned_system_allocator():
    code = (
        "import pyarrow as pa; from engine.batch.allocator import tune_for_bulk; "
        "before = pa.default_memory_pool().backend_name; ok = tune_for_bulk(); "
        "print(before, ok, pa.default_memory_pool().backend_name)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout.split()
    assert out[1:] == ["True", "system"] and out[0] != "system"


def test_the_command_line_does_not_load_pyarrow_until_a_bulk_command_runs():
    code = "import sys, engine.cli.main; print('pyarrow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "False"
