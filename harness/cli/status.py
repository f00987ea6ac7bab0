"""`harness status` (registered on the main command group): what a runs folder holds (read by
:mod:`harness.runs.status`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from harness.cli.common import HarnessError
from harness.runs.status import STATUSES, scan_runs


def _one_line(text: str) -> str:
    """Control characters (newlines, escape sequences) of a name or reason shown as ``?``."""
    return "".join(c if c.isprintable() else "?" for c in text)


@click.command("status")
@click.option("--runs", "runs_dir", required=True, help="folder of run directories (the --out of `harness run`)")
@click.option("--json", "as_json", is_flag=True, help="print one JSON list of runs")
def status_cmd(runs_dir: str, as_json: bool) -> None:
    """Summarise complete, failed (with reasons) and unfinished runs of a runs folder; a run id found in
    two folders (a copied run folder) is counted once, with a warning naming the copy."""
    runs = Path(runs_dir)
    if not runs.is_dir():
        raise HarnessError(f"runs folder {runs} does not exist")
    rows, duplicates = scan_runs(runs)
    for warning in duplicates:  # on stderr: --json stays one JSON document
        click.echo(f"warning: {_one_line(warning)}", err=True)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    counts = {s: sum(r["status"] == s for r in rows) for s in STATUSES}
    shown = {s: n for s, n in counts.items() if n or s != "unreadable"}  # unreadable only when there are some
    click.echo(f"{runs}: {len(rows)} runs: " + ", ".join(f"{n} {s}" for s, n in shown.items()))
    for status in STATUSES:
        for row in (r for r in rows if r["status"] == status):
            click.echo(f"{status:<11} {_one_line(row['run_id'])}  {_one_line(str(row['detail']))}")
