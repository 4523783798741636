"""One module per command group; each exposes `register(subparsers)`."""

from __future__ import annotations
