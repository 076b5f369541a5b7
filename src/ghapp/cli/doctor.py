"""``ghapp doctor``: every check of :mod:`ghapp.doctor`, one line each, and how to fix it.

Light to import (``ghapp --help`` imports it): the checks, the database and GitHub clients
are imported when the command runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ghapp.cli.output import escape, out

if TYPE_CHECKING:
    from ghapp.doctor import Check

STYLES = {"ok": "green", "warn": "yellow", "fail": "bold red"}
SUMMARY = "{fail} failed, {warn} {warnings}, {ok} ok"


def doctor_command(
    json_: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
) -> None:
    """Check the configuration end to end: database, webhook secret, GitHub App,
    installations (synced now), clone access, Claude Code, sandbox, public URL.

    Exits 1 when a check fails. It never migrates the database."""
    import asyncio

    from pydantic import ValidationError

    from ghapp.doctor import Check, failed, run_checks
    from ghapp.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        reasons = "; ".join(
            f"GHAPP_{'.'.join(str(p) for p in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        checks = [Check("settings", "fail", reasons, "Correct the settings named.")]
    else:
        checks = asyncio.run(run_checks(settings))
    show(checks, json_)
    if failed(checks):
        raise typer.Exit(1)


def wrap(text: str, width: int) -> str:
    """``text`` in lines of ``width`` at most, continued under the text (not the status)."""
    import textwrap

    return textwrap.fill(text, width, subsequent_indent="      ", break_on_hyphens=False)


def show(checks: list[Check], as_json: bool) -> None:
    if as_json:
        import json

        ok = not any(check.status == "fail" for check in checks)
        data = {"ok": ok, "checks": [check.as_dict() for check in checks]}
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    width = max(40, min(out.width, 100))
    for check in checks:
        style = STYLES[check.status]
        first = wrap(f"{check.status:<4}  {check.name}: {check.detail}", width)
        out.print(
            f"[{style}]{check.status}[/]{escape(first[len(check.status) :])}", highlight=False
        )
        if check.fix and check.status != "ok":
            out.print(escape(wrap(f"      fix: {check.fix}", width)), highlight=False)
    counts = {status: sum(c.status == status for c in checks) for status in STYLES}
    warnings = "warning" if counts["warn"] == 1 else "warnings"
    out.print(SUMMARY.format(**counts, warnings=warnings), highlight=False)
