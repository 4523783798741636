"""What every benchmark is told: quick or full, where to put files, how long it may take."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

POSTGRES_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True, slots=True)
class Config:
    quick: bool
    workdir: Path  # a fresh directory on disk (not tmpfs: fsync must cost what it costs)
    runs: int  # repetitions per figure: >= 3 full, 1 quick
    budget: float  # seconds this benchmark may take before it stops adding runs
    started: float = 0.0

    def __post_init__(self) -> None:
        if not self.started:
            object.__setattr__(self, "started", time.monotonic())

    def left(self) -> float:
        """Seconds of the budget still unspent (never negative)."""
        return max(0.0, self.budget - (time.monotonic() - self.started))

    def pick(self, quick: int, full: int) -> int:
        return quick if self.quick else full

    @property
    def postgres(self) -> str:
        """The same server the PostgreSQL tests use."""
        return os.environ.get("AUTOJOIN_TEST_POSTGRES", POSTGRES_DEFAULT)
