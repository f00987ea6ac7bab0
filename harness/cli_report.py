"""`harness report` (registered on the main command group)."""

from __future__ import annotations

from harness.cli import cli  # noqa: F401
