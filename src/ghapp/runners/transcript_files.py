"""The Claude Code transcript in a session's home: read back after the session, restored
before a follow-up.

The CLI keeps each conversation in ``$HOME/.claude/projects/<project>/<session id>.jsonl``,
one JSON object a line; ``<project>`` is the working directory with every character but
ASCII letters and digits made ``-`` (past 200 characters the CLI cuts it and adds a hash of
its own). With ``--resume`` the CLI looks for the session in every project folder, so a
transcript restored under the new checkout's name is found even where that name was cut.

The session can write anything in its home, and ghapp reads that home from outside the
sandbox: it may have left a symbolic link to ghapp's own files, a FIFO, or a hard link where
the transcript should be. So every folder on the way and the file itself are opened without
following links (``O_NOFOLLOW`` at each step), only a regular file with one link is read,
and no more than the size limit.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

PROJECTS = (".claude", "projects")
LONGEST_PROJECT_NAME = 200  # the CLI's own limit before it adds a hash
DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK  # a FIFO must not hold ghapp up


class TranscriptRefused(Exception):
    """What the session left is not something ghapp reads (the message says why)."""


def project_name(cwd: Path) -> str:
    """The CLI's folder name for sessions run in ``cwd``."""
    return re.sub(r"[^a-zA-Z0-9]", "-", str(cwd))[:LONGEST_PROJECT_NAME]


def file_name(agent_session_id: str) -> str:
    """``<id>.jsonl``, for a CLI session id (a UUID), never a path of any other shape."""
    try:
        canonical = str(uuid.UUID(agent_session_id))
    except ValueError:
        raise TranscriptRefused(f"{agent_session_id!r} is not a session id") from None
    if canonical != agent_session_id:
        raise TranscriptRefused(f"{agent_session_id!r} is not a session id")
    return f"{canonical}.jsonl"


def problem(data: bytes) -> str | None:
    """Why ``data`` is not a CLI transcript (one JSON object a line), or None."""
    lines = 0
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            return f"line {number} is not JSON"
        if not isinstance(value, dict):
            return f"line {number} is not a JSON object"
        lines += 1
    return None if lines else "it is empty"


def restore(home: Path, cwd: Path, agent_session_id: str, data: bytes) -> Path:
    """Write the transcript where the CLI, run in ``cwd`` with this ``home``, looks for it;
    mode 0600, in folders made here (the home is the session's fresh one)."""
    name = file_name(agent_session_id)
    parts = (*PROJECTS, project_name(cwd))
    with _opened(home, DIRECTORY) as root:
        for depth in range(len(parts)):
            with _walk(root, parts[:depth]) as folder, contextlib.suppress(FileExistsError):
                os.mkdir(parts[depth], 0o700, dir_fd=folder)
        with _walk(root, parts) as folder:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            with os.fdopen(os.open(name, flags, 0o600, dir_fd=folder), "wb") as out:
                out.write(data)
    return home.joinpath(*PROJECTS, project_name(cwd), name)


def read_back(home: Path, agent_session_id: str, max_bytes: int) -> bytes | None:
    """The session's transcript, or None when it wrote none. Raises
    :class:`TranscriptRefused` for a link, a non-regular file, several candidates, a file
    over ``max_bytes`` or one that is not a transcript."""
    name = file_name(agent_session_id)
    try:
        with _opened(home, DIRECTORY) as root, _walk(root, PROJECTS) as projects:
            found = [data for data in _candidates(projects, name, max_bytes) if data is not None]
    except FileNotFoundError:
        return None  # no .claude or projects folder: the CLI never wrote one
    except OSError as exc:
        raise TranscriptRefused(f"its folders could not be read ({exc.strerror})") from None
    if len(found) > 1:
        raise TranscriptRefused(f"{len(found)} files claim to be its transcript")
    if not found:
        return None
    why = problem(found[0])
    if why is not None:
        raise TranscriptRefused(f"it is not a transcript: {why}")
    return found[0]


def _candidates(projects: int, name: str, max_bytes: int) -> Iterator[bytes | None]:
    """The file ``name`` in each project folder (links are not followed: the CLI only makes
    folders here)."""
    with os.scandir(projects) as entries:
        folders = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
    for folder_name in folders:
        with _opened_at(projects, folder_name, DIRECTORY) as folder:
            yield _read_file(folder, name, max_bytes)


def _read_file(folder: int, name: str, max_bytes: int) -> bytes | None:
    try:
        fd = os.open(name, FILE, dir_fd=folder)
    except FileNotFoundError:
        return None
    except OSError as exc:  # ELOOP: a symbolic link where the transcript should be
        raise TranscriptRefused(f"{name} could not be opened safely ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise TranscriptRefused(f"{name} is not a regular file")
        if info.st_nlink != 1:
            raise TranscriptRefused(f"{name} has {info.st_nlink} links")
        if info.st_size > max_bytes:
            raise TranscriptRefused(f"{name} is {info.st_size} bytes, over {max_bytes}")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise TranscriptRefused(f"{name} is over {max_bytes} bytes")
    return data


@contextlib.contextmanager
def _opened(path: Path, flags: int) -> Iterator[int]:
    fd = os.open(path, flags)
    try:
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def _opened_at(folder: int, name: str, flags: int) -> Iterator[int]:
    fd = os.open(name, flags, dir_fd=folder)
    try:
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def _walk(folder: int, parts: tuple[str, ...]) -> Iterator[int]:
    """The folder at ``parts`` under ``folder`` (itself when there are none), no link
    followed on the way."""
    fds: list[int] = [os.dup(folder)]
    try:
        for part in parts:
            fds.append(os.open(part, DIRECTORY, dir_fd=fds[-1]))
        yield fds[-1]
    finally:
        for fd in fds:
            os.close(fd)
