"""The one assertion every hostile command line shares: refused with one line on stderr and exit code 2."""

from __future__ import annotations

import pytest

from harness.cli.main import main


def assert_refused(argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Run ``harness ARGV``: exit code 2, exactly one ``error:`` line naming ``fragment``, no traceback."""
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert code == 2, captured
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in captured.err + captured.out
