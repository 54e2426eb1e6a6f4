"""A writable copy of the shipped rules and policies, for tests that break them on purpose."""

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def copy_home(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
