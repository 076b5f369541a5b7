"""Helpers for tests of ghapp's command line: reading the tables it prints."""

from __future__ import annotations

import re


def table_rows(text: str) -> list[list[str]]:
    """The body rows of a printed table, cells split on runs of spaces."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("─")) + 1
    return [re.split(r" {2,}", line.strip()) for line in lines[start:] if line.strip()]
