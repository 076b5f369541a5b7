"""``ghapp doctor``: is this ghapp set up to work, end to end? Each answer a :class:`Check`.

Every check is a small function returning its name, a status (``ok``, ``warn``, ``fail``),
what it found and, when not ok, one sentence saying how to fix it. :func:`fast_checks`
touch neither the network nor the database (``ghapp serve`` says them first, before it
starts); :func:`run_checks` adds the rest: the database and its schema (never migrated
here), GitHub (the app's JWT, its installations, through an installation sync), a clone
with an installation token, and the public URL from outside.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from ghapp.settings import Settings, load_generated_webhook_secret

if TYPE_CHECKING:
    from ghapp.db import Database
    from ghapp.github.app import GitHubApp

Status = Literal["ok", "warn", "fail"]
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")
WEAK_SECRETS = frozenset(
    {"secret", "changeme", "change-me", "password", "test", "development", "placeholder"}
)
MIN_SECRET_LENGTH = 16
CLAUDE_VERSION_TIMEOUT_S = 30
HTTP_TIMEOUT_S = 10.0

NO_APP = "No GitHub App configured: webhooks will be stored but no run can act on GitHub."
NO_APP_FIX = "Set GHAPP_APP_ID and GHAPP_PRIVATE_KEY, or run `ghapp setup`."
NO_SIGN_IN_TOKEN = (
    "Signing in to the dashboard needs a token: "  # noqa: S105 (a sentence, not a password)
    "create one with `ghapp token create me --admin`."
)
DASHBOARD_AT = "The dashboard is at {url}/ (sign in with an API token)."
FIX_DB_UPGRADE = "Run `ghapp db upgrade` (on SQLite `ghapp serve` also does it)."


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


# -- fast: no network, no database ---------------------------------------------------------


def check_app_configured(settings: Settings) -> Check:
    problem = settings.github_app_problem()
    if problem is None:
        return ok("GitHub App", f"app id {settings.app_id}, private key set")
    if "cannot be read" in problem:
        return Check("GitHub App", "fail", problem, "Make the key file readable by ghapp.")
    return Check("GitHub App", "fail", NO_APP, NO_APP_FIX)


def check_webhook_secret(settings: Settings) -> Check:
    if settings.is_sqlite:  # the embedded default generates one on first start
        load_generated_webhook_secret(settings)
    secrets = settings.webhook_secrets
    if not secrets and settings.is_sqlite:
        return Check(
            "webhook secret",
            "warn",
            "none yet: `ghapp serve` generates one into the data directory on first start",
            "Give GitHub the same secret (the app's settings), or set GHAPP_WEBHOOK_SECRET.",
        )
    if not secrets:
        return Check(
            "webhook secret",
            "fail",
            "GHAPP_WEBHOOK_SECRET is not set: every delivery will be refused",
            "Set GHAPP_WEBHOOK_SECRET to the secret in the app's settings on GitHub "
            "(`ghapp setup` writes both).",
        )
    weak = [s for s in secrets if s.lower() in WEAK_SECRETS or len(s) < MIN_SECRET_LENGTH]
    if weak:
        return Check(
            "webhook secret",
            "warn",
            f"{len(weak)} of {len(secrets)} webhook secrets are short or a placeholder",
            "Use a long random secret (e.g. `openssl rand -hex 32`) on GitHub and in "
            "GHAPP_WEBHOOK_SECRET.",
        )
    return ok("webhook secret", f"{len(secrets)} set")


def check_claude(settings: Settings, *, version: bool = True) -> Check:
    """The Claude Code executable is found (and, unless ``version`` is False, answers)."""
    found = shutil.which(settings.claude_bin)
    if found is None:
        return Check(
            "Claude Code",
            "fail",
            f"GHAPP_CLAUDE_BIN={settings.claude_bin} is not found: Claude Code sessions will fail",
            "Install it (`npm install -g @anthropic-ai/claude-code`) or point GHAPP_CLAUDE_BIN "
            "at it.",
        )
    if not version:
        return ok("Claude Code", found)
    env = {
        **os.environ,
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    try:
        done = subprocess.run(  # noqa: S603 (the configured executable, no shell)
            [found, "--version"],
            capture_output=True,
            text=True,
            timeout=CLAUDE_VERSION_TIMEOUT_S,
            env=env,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("Claude Code", "fail", f"{found} --version: {exc}", _CLAUDE_FIX)
    said = (done.stdout.strip() or done.stderr.strip()).splitlines()
    if done.returncode != 0:
        reason = said[-1] if said else f"exit status {done.returncode}"
        return Check("Claude Code", "fail", f"{found} --version failed: {reason}", _CLAUDE_FIX)
    return ok("Claude Code", f"{said[0] if said else 'no version printed'} ({found})")


_CLAUDE_FIX = "Reinstall Claude Code, or point GHAPP_CLAUDE_BIN at a working one."


def check_sandbox(settings: Settings) -> Check:
    from ghapp.sandbox import probe

    sandbox = probe(settings.sandbox)
    if sandbox.active:
        return ok("sandbox", f"bubblewrap ({sandbox.bwrap}), GHAPP_SANDBOX={settings.sandbox}")
    if settings.sandbox == "off":
        return Check(
            "sandbox",
            "warn",
            "GHAPP_SANDBOX=off: sessions run WITHOUT a sandbox",
            "Set GHAPP_SANDBOX=auto or required outside development.",
        )
    fix = "Install bubblewrap (Debian: apt install bubblewrap) and allow user namespaces."
    if settings.sandbox == "required":
        return Check(
            "sandbox", "fail", f"required, unavailable: {sandbox.problem}; sessions refused", fix
        )
    return Check(
        "sandbox",
        "warn",
        f"sessions run WITHOUT a sandbox ({sandbox.problem}): a session could read ghapp's secrets",
        f"{fix} GHAPP_SANDBOX=required refuses sessions without one.",
    )


def check_public_url_setting(settings: Settings) -> Check:
    url = settings.public_url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Check(
            "public URL",
            "fail",
            f"GHAPP_PUBLIC_URL={url} is not an http(s) address",
            "Set GHAPP_PUBLIC_URL to where people reach this server.",
        )
    local = parts.hostname in LOCAL_HOSTS
    if parts.scheme != "https" and not local:
        return Check(
            "public URL",
            "warn",
            f"{url} is plain http: sign-in tokens and webhooks travel unencrypted",
            "Serve ghapp behind HTTPS and set GHAPP_PUBLIC_URL=https://….",
        )
    if local and "public_url" not in settings.model_fields_set:
        return Check(
            "public URL",
            "warn",
            f"GHAPP_PUBLIC_URL is not set (default {url}): links in comments reach only "
            "this machine",
            "Set GHAPP_PUBLIC_URL to where people (and GitHub) reach this server.",
        )
    return ok("public URL", url)


def fast_checks(settings: Settings, *, claude_version: bool = True) -> list[Check]:
    """The checks that need neither the network nor the database."""
    return [
        check_webhook_secret(settings),
        check_app_configured(settings),
        check_claude(settings, version=claude_version),
        check_sandbox(settings),
        check_public_url_setting(settings),
    ]


# -- slow: the database, GitHub, git, the public URL ----------------------------------------


async def check_database(settings: Settings, db: Database) -> Check:
    from ghapp.db.errors import describe
    from ghapp.db.migrate import current_revision, head_revision

    try:
        current = await current_revision(db)
    except Exception as exc:  # any failure means "not usable": say it in one line
        return Check(
            "database",
            "fail",
            f"{db.dialect} not reachable: {describe(exc)[:300]}",
            "Check GHAPP_DATABASE_URL and that the database server is running.",
        )
    head = head_revision()
    if current != head:
        return Check(
            "database",
            "fail",
            f"{db.dialect} schema at {current or 'nothing'}, this ghapp needs {head}",
            FIX_DB_UPGRADE,
        )
    return ok("database", f"{db.dialect}, schema at head ({head})")


async def check_github_app(github: GitHubApp) -> tuple[Check, dict[str, Any] | None]:
    from ghapp.installation_sync import failure_reason

    try:
        app = await github.as_app().getitem("/app", jwt=github.jwt())
    except Exception as exc:  # refused, unreachable or a bad key: the reason says which
        return (
            Check(
                "GitHub App authentication",
                "fail",
                f"GET /app as the app failed: {failure_reason(exc)}",
                "Check GHAPP_APP_ID and GHAPP_PRIVATE_KEY against the app's page on GitHub "
                "(and GHAPP_GITHUB_API_URL for GitHub Enterprise Server).",
            ),
            None,
        )
    detail = f"app {app.get('slug')!s} (id {app.get('id')!s})"
    return ok("GitHub App authentication", detail), app


def check_app_slug(settings: Settings, app: dict[str, Any]) -> Check | None:
    """A GHAPP_APP_SLUG that is not the app's own: no mention or assignment would be seen.
    None when it is, or is not set (the installation sync learns it)."""
    told, actual = settings.app_slug, app.get("slug")
    if not told or not isinstance(actual, str) or told.lower() == actual.lower():
        return None
    return Check(
        "app slug",
        "warn",
        f"GHAPP_APP_SLUG is {told!r} but GitHub calls the app {actual!r}: mentions of "
        f"@{actual} and issues assigned to {actual}[bot] start nothing",
        f"Set GHAPP_APP_SLUG={actual}, or remove it (the installation sync learns it).",
    )


async def check_installations(
    settings: Settings, db: Database, github: GitHubApp, app: dict[str, Any]
) -> Check:
    """An installation sync, now; how many installations and repositories ghapp knows."""
    from ghapp.clock import SystemClock
    from ghapp.installation_sync import InstallationSync, failure_reason
    from ghapp.metrics import Metrics

    sync = InstallationSync(settings, db, SystemClock(), github, Metrics(), "ghapp-doctor")
    install = f"{app.get('html_url') or 'the app page'}/installations/new"
    try:
        report = await sync.sync()
    except Exception as exc:  # GitHub or the database: the sentence says which
        return Check(
            "installations",
            "fail",
            f"installation sync failed: {failure_reason(exc)}",
            "Run `ghapp doctor` again once GitHub and the database answer.",
        )
    if report.installations == 0:
        return Check(
            "installations",
            "warn",
            "the app is installed nowhere: no repository can have jobs",
            f"Install it on your repositories: {install}",
        )
    detail = (
        f"{report.installations} installation(s), {report.repositories} repositories "
        f"(synced: {report.added} new, {report.deactivated} no longer listed)"
    )
    if report.problems:
        return Check("installations", "warn", f"{detail}; {'; '.join(report.problems)}", "")
    return ok("installations", detail)


async def check_clone_access(settings: Settings, db: Database, github: GitHubApp) -> Check:
    """An installation token can list the refs of one installed repository."""
    from sqlalchemy import select
    from sqlmodel import col

    from ghapp.db.models import Repository
    from ghapp.installation_sync import failure_reason
    from ghapp.worker.checkout import clone_url, git_environment

    async with db.read() as conn:
        row = (
            await conn.execute(
                select(col(Repository.full_name), col(Repository.installation_id))
                .where(
                    col(Repository.active).is_(True), col(Repository.installation_id).is_not(None)
                )
                .order_by(col(Repository.id))
                .limit(1)
            )
        ).first()
    if row is None:
        return Check("clone access", "warn", "no installed repository to try", "")
    full_name, installation_id = str(row[0]), int(row[1] or 0)
    try:
        token = await github.token(installation_id)
    except Exception as exc:  # GitHub refused a token for it
        return Check(
            "clone access",
            "fail",
            f"no installation token for {full_name}: {failure_reason(exc)}",
            "Check the app's installation on GitHub (suspended? permissions accepted?).",
        )
    url = clone_url(settings.git_url, full_name)
    failure = await _ls_remote(url, git_environment(token), token)
    if failure is not None:
        return Check(
            "clone access",
            "fail",
            f"git ls-remote {url} failed: {failure}",
            "Check GHAPP_GIT_URL and that the app has Contents: read on the repository.",
        )
    return ok("clone access", f"git ls-remote {url} with an installation token")


async def _ls_remote(url: str, env: dict[str, str], token: str) -> str | None:
    process = await asyncio.create_subprocess_exec(
        "git",
        "ls-remote",
        "--heads",
        url,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(60):
            _, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        return "timed out after 60 s"
    if process.returncode == 0:
        return None
    lines = err.decode("utf-8", "replace").replace(token, "****").strip().splitlines()
    return lines[-1][:300] if lines else f"exit status {process.returncode}"


async def check_public_url_reachable(settings: Settings) -> Check:
    import httpx

    url = f"{settings.public_url}/healthz"
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, follow_redirects=False) as client:
            answer = await client.get(url)
    except httpx.HTTPError as exc:
        return Check(
            "public URL reachable",
            "fail",
            f"GET {url}: {type(exc).__name__} {str(exc)[:200]}".strip(),
            "Start `ghapp serve`, and check that GHAPP_PUBLIC_URL leads to it (DNS, proxy, "
            "firewall).",
        )
    if answer.status_code != 200:
        return Check(
            "public URL reachable",
            "fail",
            f"GET {url} answered {answer.status_code}",
            "Check that GHAPP_PUBLIC_URL leads to ghapp and not to another server.",
        )
    return ok("public URL reachable", f"GET {url} answered 200")


async def check_sign_in(settings: Settings, db: Database) -> Check:
    from sqlalchemy import func, select
    from sqlmodel import col

    from ghapp.db.models import ApiToken

    async with db.read() as conn:
        count = await conn.scalar(
            select(func.count()).select_from(ApiToken).where(col(ApiToken.revoked_at).is_(None))
        )
    if count or settings.admin_token is not None:
        return ok("dashboard sign-in", DASHBOARD_AT.format(url=dashboard_url(settings)))
    return Check("dashboard sign-in", "warn", "no API token exists yet", NO_SIGN_IN_TOKEN)


def sentence(check: Check) -> str:
    """A check that is not ok as a person reads it: what is wrong, then the fix."""
    detail = check.detail if check.detail.endswith((".", "!", "?")) else f"{check.detail}."
    return f"{detail[0].upper()}{detail[1:]} {check.fix}".strip()


def dashboard_url(settings: Settings) -> str:
    """GHAPP_PUBLIC_URL when set, else where ``ghapp serve`` listens."""
    if "public_url" in settings.model_fields_set:
        return settings.public_url
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
    return f"http://{host}:{settings.port}"


async def startup_notes(settings: Settings, db: Database) -> list[tuple[Status, str]]:
    """What ``ghapp serve`` says before it serves: each fast check that is not ok, as a
    sentence with its fix (failures first), then how to sign in to the dashboard."""
    notes = [c for c in fast_checks(settings, claude_version=False) if c.status != "ok"]
    notes.sort(key=lambda check: check.status != "fail")
    said: list[tuple[Status, str]] = [(c.status, sentence(c)) for c in notes]
    sign_in = await check_sign_in(settings, db)
    said.append((sign_in.status, sign_in.fix or sign_in.detail))
    return said


async def run_checks(settings: Settings) -> list[Check]:
    """Every check, in the order a person would fix them."""
    from ghapp.clock import SystemClock
    from ghapp.github.app import GitHubApp
    from ghapp.github.transport import RetryPolicy

    checks = fast_checks(settings)
    db = await _open_database(settings, checks)
    github: GitHubApp | None = None
    try:
        if db is not None:
            checks.append(await check_sign_in(settings, db))
        if settings.github_app_problem() is None:
            github = GitHubApp(settings, SystemClock(), RetryPolicy(attempts=2, base_delay=0.5))
            auth, app = await check_github_app(github)
            checks.append(auth)
            if app is not None and (slug := check_app_slug(settings, app)) is not None:
                checks.append(slug)
            if app is not None and db is not None:
                checks.append(await check_installations(settings, db, github, app))
                checks.append(await check_clone_access(settings, db, github))
        checks.append(await check_public_url_reachable(settings))
    finally:
        if github is not None:
            await github.aclose()
        if db is not None:
            await db.dispose()
    return checks


async def _open_database(settings: Settings, checks: list[Check]) -> Database | None:
    """The database if it is usable (reachable, schema at head); its check appended."""
    from ghapp.db import Database

    missing = _missing_sqlite_file(settings.database_url)
    if missing is not None:
        checks.insert(
            0,
            Check(
                "database",
                "fail",
                f"no SQLite database at {missing}",
                "Run `ghapp serve` (it creates and migrates it) or `ghapp db upgrade` here.",
            ),
        )
        return None
    db = Database(settings.database_url)
    check = await check_database(settings, db)
    checks.insert(0, check)
    if check.status == "ok":
        return db
    await db.dispose()
    return None


def _missing_sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names when it does not exist (opening it would create it)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    path = Path(parsed.database or "")
    return None if path.exists() else path


def failed(checks: list[Check]) -> bool:
    return any(check.status == "fail" for check in checks)
