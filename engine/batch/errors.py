"""Refusals of a population file: the file, the 1-based data row, the column, in Chinese and English."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_ERRORS = 50


@dataclass
class RowError:
    file: str
    row: int  # 1-based data row in the file
    column: str
    zh: str
    en: str

    def __str__(self) -> str:
        return f"{self.file} 第{self.row}行 {self.column}: {self.zh} ({self.en})"


class PopulationError(ValueError):
    """The population files are malformed; nothing was evaluated or written."""

    def __init__(self, errors: list[RowError], total: int | None = None):
        self.errors = errors
        self.total = total if total is not None else len(errors)
        super().__init__("\n".join(str(e) for e in errors[:MAX_ERRORS]))


class Errors:
    def __init__(self) -> None:
        self.items: list[RowError] = []
        self.total = 0

    def add(self, file: str, row: int, column: str, zh: str, en: str) -> None:
        self.total += 1
        if len(self.items) < MAX_ERRORS:
            self.items.append(RowError(file, row, column, zh, en))

    def rows(self, file: str, base: int, mask: np.ndarray, column: str, zh: str, en: str) -> None:
        """Report every row of a part where ``mask`` holds."""
        bad = np.flatnonzero(mask)
        self.total += len(bad)
        for i in bad[: max(0, MAX_ERRORS - len(self.items))].tolist():
            self.items.append(RowError(file, base + i + 1, column, zh, en))

    def raise_if_any(self) -> None:
        if self.total:
            raise PopulationError(self.items, self.total)


def raise_rows(file: str, base: int, mask: np.ndarray, column: str, zh: str, en: str) -> None:
    e = Errors()
    e.rows(file, base, mask, column, zh, en)
    e.raise_if_any()
