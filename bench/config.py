"""What every benchmark is told: quick or full, where to put files, how long it may take."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.procs import POSTGRES_DSN


@dataclass(frozen=True, slots=True)
class Config:
    quick: bool
    workdir: Path  # a fresh directory on disk (not tmpfs: fsync must cost what it costs)
    runs: int  # repetitions per figure: >= 3 full, 1 quick
    budget: float  # seconds this benchmark may take before it stops adding runs
    started: float = 0.0
    seeds: tuple[int, ...] = ()  # chosen on the command line (benchmarks that take seeds)
    scale: float = 1.0  # size factor on the command line (benchmarks that take one)

    def __post_init__(self) -> None:
        if not self.started:
            object.__setattr__(self, "started", time.monotonic())

    def left(self) -> float:
        """Seconds of the budget still unspent (never negative)."""
        return max(0.0, self.budget - (time.monotonic() - self.started))

    def pick(self, quick: int, full: int) -> int:
        return quick if self.quick else full

    def seeds_or(self, quick: tuple[int, ...], full: tuple[int, ...]) -> tuple[int, ...]:
        """The seeds given on the command line, else the mode's default."""
        return self.seeds or (quick if self.quick else full)

    @property
    def postgres(self) -> str:
        """The same server the PostgreSQL tests use (AUTOJOIN_TEST_POSTGRES)."""
        return POSTGRES_DSN

    def repetitions(self, notes: list[str], what: str = "", cap: float = 0.0) -> Iterator[int]:
        """0, 1, … `runs - 1`; the first run always happens, a later one only while the
        budget (and `cap` seconds from the first, if given) lasts; `notes` says if it stopped."""
        started = time.monotonic()
        for rep in range(self.runs):
            capped = cap > 0 and time.monotonic() - started > cap
            if rep and (self.left() <= 0 or capped):
                lead = f"{what}: time" if what else "Time"
                notes.append(f"{lead} budget spent after {rep} runs.")
                return
            yield rep

    def fresh_dir(self, name: str) -> Path:
        """A new directory under the work directory."""
        path = self.workdir / name
        path.mkdir(parents=True)
        return path
