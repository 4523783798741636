"""autojoin benchmarks: `python -m bench` (see bench/__main__.py and bench/results.md)."""

from __future__ import annotations
