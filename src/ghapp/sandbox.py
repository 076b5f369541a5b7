"""A sandbox around every session process: what a session can see and change.

ghapp runs an agent because a stranger opened an issue; on a public repository anyone can
write what the agent reads, and an agent talked into running commands runs them with
whatever the process can reach. On the server that is the database, the webhook secret,
the encryption key, the app's private key, other sessions' checkouts, and ghapp's own
environment in ``/proc``. So every session process (``claude`` with its tools, hooks and
MCP servers, and the ``shell`` runner) runs inside bubblewrap (Debian's ``bwrap``):

* **Writable:** only the session's own folder: its checkout, its fresh home and its
  temporary folder (all removed when the session ends).
* **Read-only:** the system (``/usr`` and the ``/bin``/``/lib`` links into it), the few files
  of ``/etc`` programs need (certificates, name resolution, users), and the executable
  itself. Nothing else of the machine: not ghapp's data directory, database files, ``.env``,
  key files, home, working directory, or other checkouts.
* **Processes:** a new PID namespace with its own ``/proc``: ghapp and everything else on
  the machine are invisible. The sandbox dies with ghapp (``--die-with-parent``), and every
  process a session started ends with it.
* **Privileges:** a user namespace in which the session is an ordinary user (uid 1000),
  never root, whoever ghapp runs as; all capabilities dropped; a new session (no terminal
  to inject into).
* **Environment:** exactly what the runner passes (see ``runners.claude``), nothing else.

The network is not cut off: a session must reach the model's API. Keep what sessions must
not reach (the database, cloud metadata, internal services) behind credentials they do not
have or an egress firewall; ``SECURITY.md`` says so.

``GHAPP_SANDBOX``: ``required`` refuses to start a session without the sandbox and says
why; ``auto`` (the default) uses it when it works and warns loudly at start-up when it
does not; ``off`` is for development only, and logged as such at every start.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger("ghapp.sandbox")

Mode = Literal["auto", "required", "off"]

# What of /etc programs need: TLS roots, name resolution, users and groups, the loader's
# cache, time zones, the alternatives links of Debian's /usr/bin. Secrets people keep in /etc
# (keys, .env files, ghapp's own configuration) stay out.
ETC = (
    "ssl",
    "ca-certificates",
    "pki",
    "resolv.conf",
    "hosts",
    "nsswitch.conf",
    "gai.conf",
    "host.conf",
    "passwd",
    "group",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "alternatives",
    "mime.types",
)
USR_LINKS = ("bin", "sbin", "lib", "lib64", "lib32")


class SandboxUnavailable(RuntimeError):
    """The sandbox is required and cannot be used here (the message says why)."""


@dataclass(frozen=True)
class Sandbox:
    mode: Mode
    bwrap: str | None  # the executable, when the sandbox works here
    problem: str | None = None  # why it does not, when it does not

    @property
    def active(self) -> bool:
        return self.mode != "off" and self.bwrap is not None

    def wrap(self, argv: Sequence[str], *, scratch: Path, cwd: Path) -> list[str]:
        """``argv`` run inside the sandbox, with ``scratch`` (the session's folder) writable.

        Raises :class:`SandboxUnavailable` in ``required`` mode when the sandbox cannot run;
        in ``auto`` or ``off`` mode without it, ``argv`` runs as it is."""
        if not self.active:
            if self.mode == "required":
                raise SandboxUnavailable(
                    f"GHAPP_SANDBOX=required, and the sandbox cannot run here: {self.problem}"
                )
            return list(argv)
        assert self.bwrap is not None
        executable = _real(argv[0])
        return [
            self.bwrap,
            *_isolation(),
            *_system(),
            *_bind_ro(executable.parent),
            "--bind",
            str(scratch),
            str(scratch),
            "--chdir",
            str(cwd),
            "--",
            str(executable),
            *argv[1:],
        ]


def probe(mode: Mode) -> Sandbox:
    """Is bubblewrap installed and allowed to make namespaces here? (It may not be inside
    some containers.) Tried once at start-up with a trivial command."""
    if mode == "off":
        return Sandbox("off", None, "GHAPP_SANDBOX=off")
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return Sandbox(mode, None, "bubblewrap is not installed (Debian: apt install bubblewrap)")
    true = _real("true")
    argv = [bwrap, *_isolation(), *_system(), "--", str(true)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Sandbox(mode, None, f"bubblewrap could not run: {exc}")
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return Sandbox(mode, None, f"bubblewrap cannot make a sandbox here: {reason}")
    return Sandbox(mode, bwrap)


def announce(sandbox: Sandbox) -> str | None:
    """The start-up line about the sandbox, loud when sessions run without one."""
    if sandbox.mode == "off":
        message = "GHAPP_SANDBOX=off: sessions run WITHOUT a sandbox (development only)"
        log.warning(message)
        return message
    if sandbox.active:
        return None
    if sandbox.mode == "required":
        message = f"GHAPP_SANDBOX=required and {sandbox.problem}: every session will be refused"
    else:
        message = (
            f"sessions will run WITHOUT a sandbox: {sandbox.problem}. A session could then read "
            "ghapp's secrets; install bubblewrap, or set GHAPP_SANDBOX=required to refuse"
        )
    log.warning(message)
    return message


SESSION_UID = 1000  # who a session is inside the sandbox: never root, whoever ghapp runs as


def _isolation() -> list[str]:
    return [
        "--die-with-parent",
        "--new-session",
        "--unshare-user",
        "--uid",
        str(SESSION_UID),
        "--gid",
        str(SESSION_UID),
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--cap-drop",
        "ALL",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",  # noqa: S108 (a fresh, empty tmpfs inside the sandbox, not the machine's /tmp)
    ]


def _system() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in USR_LINKS:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in ETC:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    return args


def _bind_ro(path: Path) -> list[str]:
    if str(path).startswith(("/usr/", "/bin/", "/sbin/", "/lib")):
        return []  # already there
    return ["--ro-bind", str(path), str(path)]


def _real(program: str) -> Path:
    """The real file behind ``program`` (found on PATH, symlinks resolved)."""
    found = shutil.which(program) or program
    return Path(os.path.realpath(found))
