"""``ghapp setup`` against the GitHub stand-in: page, redirect, code exchange, .env.

The flow runs for real: its local page on a loopback port (fetched with httpx like a
browser would), GitHub's redirect simulated by GET-ing the callback, the code exchanged
over HTTP at the stand-in's ``POST /app-manifests/{code}/conversions``.
"""

from __future__ import annotations

import os
import queue
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from dotenv import dotenv_values
from typer.testing import CliRunner

import ghapp.cli.setup as setup_cli
from ghapp.cli.main import app as cli_app
from ghapp.cli.setup import SetupError, SetupOptions, SetupResult, run_setup, write_env_file
from ghapp.settings import Settings
from ghapp.standins.github import GitHubStandIn

ROOT = Path(__file__).parent.parent
APP_YML = ROOT / "app.yml"
PUBLIC = "https://ghapp.example.com"
# The headers GitHub documents on every call, as ghapp's own setup sends them.
DOCUMENTED = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}


@pytest.fixture
def standin() -> Iterator[GitHubStandIn]:
    github = GitHubStandIn()
    with github.serve_in_thread():
        yield github


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory and no GHAPP_* variables from the outside."""
    for name in list(os.environ):
        if name.startswith("GHAPP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def api(standin: GitHubStandIn, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """GHAPP_GITHUB_API_URL at the stand-in, as for GitHub Enterprise Server."""
    assert standin.base_url is not None
    monkeypatch.setenv("GHAPP_GITHUB_API_URL", standin.base_url)
    return standin.base_url


class Form(HTMLParser):
    """The page's form: its action and the manifest it posts."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.method: str | None = None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.action, self.method = values.get("action"), values.get("method")
        elif tag == "input" and values.get("name"):
            self.fields[str(values["name"])] = values.get("value") or ""


def read_form(url: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(action without query, action's query, manifest) of the setup page."""
    page = httpx.get(url, timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    form = Form()
    form.feed(page.text)
    assert form.method == "post" and form.action is not None
    action = urlsplit(form.action)
    query = {k: v[0] for k, v in parse_qs(action.query).items()}
    manifest = yaml.safe_load(form.fields["manifest"])  # JSON is YAML
    return f"{action.scheme}://{action.netloc}{action.path}", query, manifest


class Running:
    """``run_setup`` in a thread; :attr:`url` once its page is served."""

    def __init__(self, options: SetupOptions) -> None:
        self.notes: list[str] = []
        ready: queue.Queue[str] = queue.Queue()
        self._pool = ThreadPoolExecutor(1)
        self.future: Future[SetupResult] = self._pool.submit(
            run_setup, options, on_ready=ready.put, notify=self.notes.append
        )
        self.future.add_done_callback(lambda _: ready.put(""))  # wakes get() if it failed
        self.url = ready.get(timeout=30)
        if not self.url:
            self.future.result()  # raises what went wrong
        self.callback = self.url + "callback"

    def result(self) -> SetupResult:
        try:
            return self.future.result(timeout=60)
        finally:
            self._pool.shutdown()


@pytest.fixture
def start() -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def run(**options: Any) -> Running:
        running = Running(SetupOptions(port=0, **options))
        started.append(running)
        return running

    yield run
    for running in started:
        if not running.future.done():  # a failed test: end the flow with a refused code
            state = read_form(running.url)[1]["state"]
            httpx.get(running.callback, params={"code": "end", "state": state}, timeout=30)
        running._pool.shutdown()


def test_setup_registers_the_app_and_writes_env(
    standin: GitHubStandIn, api: str, workdir: Path, start: Callable[..., Running]
) -> None:
    env_file = workdir / ".env"
    env_file.write_text(
        "# my settings\nGHAPP_LOG_LEVEL=debug\nGHAPP_APP_ID=1\n"
        'GHAPP_PRIVATE_KEY="-----BEGIN OLD-----\nold\n-----END OLD-----"\n'
    )
    running = start(public_url=PUBLIC, env_file=env_file, manifest_path=APP_YML)
    assert running.url.startswith("http://127.0.0.1:")
    assert any(running.url in note for note in running.notes)

    action, query, manifest = read_form(running.url)
    assert action == "https://github.com/settings/apps/new"
    state = query["state"]
    assert len(state) >= 20
    app_yml = yaml.safe_load(APP_YML.read_text())
    assert manifest == {
        **app_yml,
        "url": PUBLIC,
        "hook_attributes": {"url": f"{PUBLIC}/webhooks/github", "active": True},
        "redirect_url": running.callback,
    }
    assert manifest["default_events"] == app_yml["default_events"]
    assert manifest["default_permissions"] == app_yml["default_permissions"]

    standin.add_manifest_code("c0ffee", manifest, owner="octo-org", owner_type="Organization")
    # Another state (a forged or stale redirect) is refused, and the code is not spent.
    wrong = httpx.get(running.callback, params={"code": "c0ffee", "state": "x" + state})
    assert wrong.status_code == 400
    assert not standin.find_requests("POST", r"^/app-manifests/")
    assert not running.future.done()

    answer = httpx.get(running.callback, params={"code": "c0ffee", "state": state}, timeout=30)
    assert answer.status_code == 200
    result = running.result()
    (created,) = standin.created_apps
    assert result.app == created
    assert "/installations/new" in answer.text and result.install_url in answer.text

    (exchange,) = standin.find_requests("POST", r"^/app-manifests/")
    assert exchange.path == "/app-manifests/c0ffee/conversions"
    assert exchange.status == 201 and "authorization" not in exchange.headers

    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    text = env_file.read_text()
    assert text.startswith("# my settings\nGHAPP_LOG_LEVEL=debug\n")
    assert "OLD" not in text and text.count("GHAPP_APP_ID=") == 1
    written = [
        "GHAPP_APP_ID",
        "GHAPP_PRIVATE_KEY",
        "GHAPP_WEBHOOK_SECRET",
        "GHAPP_CLIENT_ID",
        "GHAPP_CLIENT_SECRET",
        "GHAPP_APP_SLUG",
        "GHAPP_PUBLIC_URL",
    ]
    assert result.written == written

    settings = Settings(_env_file=env_file)  # type: ignore[call-arg]
    assert settings.app_id == created["id"]
    assert settings.app_slug == created["slug"]  # what mentions and assignments match
    assert settings.private_key is not None
    assert settings.private_key.get_secret_value() == created["pem"]  # byte for byte
    assert settings.private_key_pem() == created["pem"]
    serialization.load_pem_private_key(created["pem"].encode(), None)
    assert settings.webhook_secrets == [created["webhook_secret"]]
    assert settings.client_id == created["client_id"]
    assert settings.client_secret is not None
    assert settings.client_secret.get_secret_value() == created["client_secret"]
    assert settings.public_url == PUBLIC
    assert settings.log_level == "debug"  # the file's other lines are kept
    assert created["events"] == app_yml["default_events"]
    assert created["owner"]["login"] == "octo-org"


def test_org_and_enterprise_server_urls(workdir: Path, start: Callable[..., Running]) -> None:
    """--org posts to the organisation's page; a GitHub Enterprise Server's API is
    ``{github_url}/api/v3`` (a stand-in with that prefix), written to .env with its git URL."""
    github = GitHubStandIn(path_prefix="/api/v3")
    with github.serve_in_thread() as base_url:
        server = base_url.removesuffix("/api/v3")
        env_file = workdir / "ghapp.env"
        running = start(
            org="octo-org", github_url=server + "/", public_url=PUBLIC, env_file=env_file
        )
        action, query, manifest = read_form(running.url)
        assert action == f"{server}/organizations/octo-org/settings/apps/new"
        assert manifest["default_events"] == yaml.safe_load(APP_YML.read_text())["default_events"]
        github.add_manifest_code("e11e", manifest)
        answer = httpx.get(running.callback, params={"code": "e11e", "state": query["state"]})
        assert answer.status_code == 200
        result = running.result()
    assert github.find_requests("POST", r"^/app-manifests/e11e/conversions$")
    values = dotenv_values(env_file)
    assert values["GHAPP_GITHUB_API_URL"] == base_url
    assert values["GHAPP_GIT_URL"] == server
    assert values["GHAPP_APP_ID"] == str(result.app["id"])
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600


@pytest.mark.parametrize("registered", ["expired", "unknown", "used"])
def test_a_code_github_refuses_is_one_clear_line_and_writes_nothing(
    standin: GitHubStandIn,
    api: str,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    registered: str,
) -> None:
    """Through the command line: the browser is 'opened' (the page's URL arrives here), the
    redirect carries a code the stand-in refuses, the command exits 1 with one line."""
    opened: queue.Queue[str] = queue.Queue()
    monkeypatch.setattr(setup_cli.webbrowser, "open", opened.put)
    if registered == "expired":
        standin.add_manifest_code("abc", {"name": "x"}, issued_at=time.time() - 3601)
    elif registered == "used":
        standin.add_manifest_code("abc", {"name": "x"})
        assert httpx.post(f"{api}/app-manifests/abc/conversions").status_code == 201
    outcome: list[Any] = []
    command = threading.Thread(
        target=lambda: outcome.append(
            CliRunner().invoke(cli_app, ["setup", "--port", "0", "--public-url", PUBLIC])
        )
    )
    command.start()
    try:
        url = opened.get(timeout=30)
        _, query, _ = read_form(url)
        answer = httpx.get(url + "callback", params={"code": "abc", "state": query["state"]})
    finally:
        command.join(timeout=60)
    assert answer.status_code == 502
    assert "expires an hour" in answer.text
    (result,) = outcome
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.startswith("ghapp setup:")]
    assert lines[-1].startswith("ghapp setup: GitHub does not know this code (404)")
    assert "expires an hour after the app was created" in lines[-1]
    assert not (workdir / ".env").exists()
    assert list(workdir.iterdir()) == []


def test_the_command_prints_what_it_wrote_and_what_to_do_next(
    standin: GitHubStandIn, api: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: queue.Queue[str] = queue.Queue()
    monkeypatch.setattr(setup_cli.webbrowser, "open", opened.put)
    (workdir / "app.yml").write_text(APP_YML.read_text().replace("name: ghapp", "name: my-bot"))
    outcome: list[Any] = []
    command = threading.Thread(
        target=lambda: outcome.append(CliRunner().invoke(cli_app, ["setup", "--port", "0"]))
    )
    command.start()
    try:
        url = opened.get(timeout=30)
        _, query, manifest = read_form(url)
        assert manifest["name"] == "my-bot"  # ./app.yml is the one posted
        assert manifest["hook_attributes"]["url"] == "http://127.0.0.1:8000/webhooks/github"
        standin.add_manifest_code("f00d", manifest)
        httpx.get(url + "callback", params={"code": "f00d", "state": query["state"]})
    finally:
        command.join(timeout=60)
    (result,) = outcome
    assert result.exit_code == 0, result.stderr
    (line,) = result.stdout.splitlines()
    (created,) = standin.created_apps
    assert (
        "GHAPP_APP_ID, GHAPP_PRIVATE_KEY, GHAPP_WEBHOOK_SECRET, GHAPP_CLIENT_ID, "
        "GHAPP_CLIENT_SECRET, GHAPP_APP_SLUG" in line
    )
    assert f"(id {created['id']}) to .env (mode 600)" in line
    assert f"{created['html_url']}/installations/new" in line
    assert "GitHub cannot deliver webhooks to http://127.0.0.1:8000" in result.stderr
    assert created["pem"] not in result.stdout + result.stderr
    assert set(dotenv_values(workdir / ".env")) == {
        "GHAPP_APP_ID",
        "GHAPP_PRIVATE_KEY",
        "GHAPP_WEBHOOK_SECRET",
        "GHAPP_CLIENT_ID",
        "GHAPP_CLIENT_SECRET",
        "GHAPP_APP_SLUG",
    }


def test_a_busy_port_is_one_clear_error(workdir: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SetupError, match=f"127.0.0.1:{port}.*another --port"):
            run_setup(SetupOptions(port=port, public_url=PUBLIC), notify=lambda _: None)


# -- the stand-in's route ----------------------------------------------------------------


def convert(base: str | None, code: str) -> httpx.Response:
    return httpx.post(f"{base}/app-manifests/{code}/conversions", headers=DOCUMENTED)


def test_standin_converts_a_code_once_within_the_hour(standin: GitHubStandIn) -> None:
    base = standin.base_url
    standin.add_manifest_code(
        "one",
        {
            "name": "My App",
            "url": PUBLIC,
            "default_events": ["issues"],
            "default_permissions": {"issues": "write"},
        },
    )
    standin.add_manifest_code("late", {}, issued_at=time.time() - 3601)
    first = convert(base, "one")
    assert first.status_code == 201
    app = first.json()
    for key in (
        "id",
        "slug",
        "node_id",
        "owner",
        "name",
        "description",
        "external_url",
        "html_url",
        "created_at",
        "updated_at",
        "permissions",
        "events",
        "client_id",
        "client_secret",
        "webhook_secret",
        "pem",
    ):
        assert key in app, key
    assert app["slug"] == "my-app" and app["name"] == "My App"
    assert app["html_url"] == "https://github.com/apps/my-app"
    assert app["permissions"] == {"metadata": "read", "issues": "write"}
    assert app["events"] == ["issues"] and app["external_url"] == PUBLIC
    assert app["pem"].startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    assert convert(base, "one").status_code == 404  # used
    assert convert(base, "late").status_code == 404  # expired
    assert convert(base, "nope").status_code == 404  # unknown
    statuses = [r.status for r in standin.find_requests("POST", "^/app-manifests/")]
    assert statuses == [201, 404, 404, 404]


# -- .env --------------------------------------------------------------------------------


def test_env_file_round_trips_awkward_values_and_keeps_other_lines(workdir: Path) -> None:
    path = workdir / "sub" / ".env"
    path.parent.mkdir()
    path.write_text(
        "export GHAPP_SMTP_HOST=smtp.example.com  # mail\n"
        "GHAPP_WEBHOOK_SECRET='old\nsecret'\n"
        "\n# trailing comment, no newline at the end"
    )
    values = {
        "GHAPP_WEBHOOK_SECRET": 'new "quoted" \\ back\\slash',
        "GHAPP_PRIVATE_KEY": "-----BEGIN X-----\nAAAA+/=\n-----END X-----\n",
        "GHAPP_APP_ID": "123",
    }
    write_env_file(path, values)
    text = path.read_text()
    assert text.startswith("export GHAPP_SMTP_HOST=smtp.example.com  # mail\n\n# trailing")
    assert "old" not in text
    read = dotenv_values(path)
    assert read == {"GHAPP_SMTP_HOST": "smtp.example.com", **values}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == [".env"]  # no temporary left behind
    with pytest.raises(ValueError, match=r"\$\{"):
        write_env_file(path, {"GHAPP_APP_ID": "${HOME}"})
    assert dotenv_values(path) == read  # unchanged


def test_a_posix_shell_reads_the_env_file_the_same(workdir: Path) -> None:
    """The README's container recipe loads .env with `set -a && . ./.env`."""
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIB+/=\nabc\n-----END RSA PRIVATE KEY-----\n"
    write_env_file(workdir / ".env", {"GHAPP_PRIVATE_KEY": pem, "GHAPP_APP_ID": "7"})
    shown = subprocess.run(
        [
            "sh",
            "-c",
            'set -a && . ./.env && set +a && printf "%s|%s" "$GHAPP_APP_ID" "$GHAPP_PRIVATE_KEY"',
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout == f"7|{pem}"
