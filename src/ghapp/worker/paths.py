"""The ``paths:`` condition of a pull-request trigger: does the PR change a file it names?

Checked by the worker before any session starts, because the webhook does not carry a PR's
files: they are read from ``GET /repos/{owner}/{repo}/pulls/{number}/files``, every page
(GitHub lists up to 3,000 files, 100 a page). A PR that changes none of them makes the run
``skipped``, with the patterns and the number of files in its reason.

The patterns mean what they mean in a GitHub Actions workflow's ``on.pull_request.paths``,
which is what people who write them know: ``*`` and ``?`` stay within one folder, ``**``
crosses folders (``src/**``, ``**/*.py``), and a pattern is matched against the whole path.
A renamed file counts under its old name too, as moving a file out of ``src/`` changes it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence

from gidgethub.abc import GitHubAPI

PER_PAGE = 100


@functools.lru_cache(maxsize=1024)
def glob_pattern(glob: str) -> re.Pattern[str]:
    """A path glob as a regular expression that must match the whole path."""
    parts: list[str] = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            parts.append("(?:.*/)?")  # any folders, or none
            i += 3
        elif glob.startswith("**", i):
            parts.append(".*")
            i += 2
        elif glob[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            parts.append("[^/]")
            i += 1
        else:
            parts.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(parts))


def any_matches(globs: Sequence[str], paths: Iterable[str]) -> bool:
    patterns = [glob_pattern(glob.lstrip("/")) for glob in globs]
    return any(pattern.fullmatch(path) for path in paths for pattern in patterns)


async def changed_paths(gh: GitHubAPI, repo: str, number: int) -> list[str]:
    """Every path the pull request changes (old names of renamed files included)."""
    paths: list[str] = []
    url = f"/repos/{repo}/pulls/{number}/files?per_page={PER_PAGE}"
    async for changed in gh.getiter(url):
        paths.append(str(changed["filename"]))
        if changed.get("previous_filename"):
            paths.append(str(changed["previous_filename"]))
    return paths


async def paths_refusal(gh: GitHubAPI, repo: str, number: int, globs: Sequence[str]) -> str | None:
    """Why the run is skipped (no changed file matches ``globs``), or None to go on."""
    paths = await changed_paths(gh, repo, number)
    if any_matches(globs, paths):
        return None
    return (
        f"no file this pull request changes matches paths {', '.join(globs)} "
        f"({len(paths)} files changed)"
    )
