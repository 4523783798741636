"""Progress on stderr: a bar redrawn in place on a terminal, plain lines otherwise."""

from __future__ import annotations

from typing import TextIO

WIDTH = 30


class Progress:
    def __init__(self, stream: TextIO | None, label: str, unit: str = "") -> None:
        self.stream = stream
        self.label = label
        self.unit = f" {unit}" if unit else ""  # what is counted: "6/6 reads"
        self.tty = bool(stream is not None and stream.isatty())
        self._last = ""
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        """Report `done` of `total` units (total may still grow)."""
        if self.stream is None:
            return
        total = max(total, done, 1)
        if self.tty:
            filled = WIDTH * done // total
            bar = "#" * filled + "-" * (WIDTH - filled)
            self.stream.write(f"\r{self.label} [{bar}] {done}/{total}{self.unit}")
            self._drawn = True
        else:
            line = f"{self.label}: {done}/{total}{self.unit}"
            if line == self._last:
                return
            self._last = line
            self.stream.write(line + "\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        if self.stream is None:
            return
        self.finish()
        self.stream.write(f"{self.label}: {text}\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.stream is not None and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
