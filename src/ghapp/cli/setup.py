"""``ghapp setup``: register the GitHub App from its manifest, write its credentials.

GitHub's manifest flow
(https://docs.github.com/en/apps/sharing-github-apps/registering-a-github-app-from-a-manifest):

1. A local page (``http://127.0.0.1:PORT/``, stdlib ``http.server`` in a thread) holds a
   form that posts the manifest (``./app.yml`` or the built-in one, with the webhook URL
   of this deployment) to ``{github}/settings/apps/new?state=…`` (an organisation's:
   ``{github}/organizations/ORG/settings/apps/new``).
2. Whoever submits it names the app on GitHub and creates it; GitHub redirects the browser
   to ``redirect_url`` (``/callback`` of the local page) with a one-time ``code`` and the
   ``state``, which must be the one this run made.
3. The code is exchanged at ``POST {api}/app-manifests/{code}/conversions`` (no
   credentials; the code works once, within an hour) for the app's id, private key,
   webhook secret, client id and secret, which are written to ``.env`` (mode 600),
   keeping the file's other lines.
"""

from __future__ import annotations

import html
import json
import os
import secrets
import tempfile
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import typer

from ghapp.cli.output import err, fail, out

if TYPE_CHECKING:
    from pydantic import ValidationError

    from ghapp.settings import Settings

DEFAULT_GITHUB_URL = "https://github.com"
DEFAULT_PORT = 8765
DEFAULT_ENV_FILE = Path(".env")
MANIFEST_FILE = Path("app.yml")
# What the exchange gives, and the settings it goes to (in this order in .env).
WRITTEN = {
    "GHAPP_APP_ID": "id",
    "GHAPP_PRIVATE_KEY": "pem",
    "GHAPP_WEBHOOK_SECRET": "webhook_secret",
    "GHAPP_CLIENT_ID": "client_id",
    "GHAPP_CLIENT_SECRET": "client_secret",
    "GHAPP_APP_SLUG": "slug",
}
LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}  # noqa: S104 (names, not a bind)


class SetupError(RuntimeError):
    """Why the flow could not finish: one line for the user."""


@dataclass
class SetupOptions:
    org: str | None = None
    github_url: str = DEFAULT_GITHUB_URL
    public_url: str | None = None  # None: GHAPP_PUBLIC_URL
    port: int = DEFAULT_PORT  # 0: any free port
    env_file: Path = DEFAULT_ENV_FILE
    manifest_path: Path | None = None  # None: the built-in manifest (src/ghapp/github)


@dataclass
class SetupResult:
    app: dict[str, Any]  # GitHub's answer to the conversion (secrets included)
    env_file: Path
    written: list[str] = field(default_factory=list)  # the variable names written

    @property
    def install_url(self) -> str:
        return f"{self.app['html_url'].rstrip('/')}/installations/new"


def setup_command(
    org: Annotated[
        str | None,
        typer.Option(metavar="ORG", help="Register the app for this organisation, not for you."),
    ] = None,
    github_url: Annotated[
        str,
        typer.Option(
            metavar="URL", help="GitHub, or your GitHub Enterprise Server (https://HOST)."
        ),
    ] = DEFAULT_GITHUB_URL,
    public_url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Where GitHub reaches this server (webhooks) (default: $GHAPP_PUBLIC_URL).",
        ),
    ] = None,
    port: Annotated[
        int, typer.Option(metavar="PORT", min=0, max=65535, help="Port of the local setup page.")
    ] = DEFAULT_PORT,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the page's URL, open no browser.")
    ] = False,
    env_file: Annotated[
        Path, typer.Option(metavar="FILE", help="Where to write the app's credentials.")
    ] = DEFAULT_ENV_FILE,
) -> None:
    """Register the GitHub App from its manifest (app.yml) and write its credentials to .env."""
    options = SetupOptions(
        org=org,
        github_url=github_url,
        public_url=public_url,
        port=port,
        env_file=env_file,
        manifest_path=MANIFEST_FILE if MANIFEST_FILE.is_file() else None,
    )

    def ready(url: str) -> None:
        if not no_browser:
            webbrowser.open(url)

    try:
        result = run_setup(options, on_ready=ready, notify=_note)
    except SetupError as exc:
        fail("setup", str(exc), code=1)
    except KeyboardInterrupt:
        fail("setup", "stopped; nothing was written", code=130)
    app = result.app
    out.print(
        f"ghapp setup: wrote {', '.join(result.written)} of the GitHub App {app['slug']} "
        f"(id {app['id']}) to {result.env_file} (mode 600); next, install it on your "
        f"repositories at {result.install_url} and start `ghapp serve`.",
        markup=False,
        highlight=False,
    )


def _note(message: str) -> None:
    err.print(f"ghapp setup: {message}", markup=False, highlight=False)


def run_setup(
    options: SetupOptions,
    *,
    on_ready: Callable[[str], None] | None = None,
    notify: Callable[[str], None] = _note,
) -> SetupResult:
    """The whole flow: serve the page, wait for GitHub's redirect, exchange, write.

    ``on_ready`` gets the page's URL once it is served. Raises :class:`SetupError`, having
    written nothing, when the flow cannot finish.
    """
    # Imported here, not at the top: `ghapp --help` imports this module and should stay quick.
    from pydantic import ValidationError

    from ghapp.settings import Settings

    try:
        settings = Settings(_env_file=options.env_file)
    except ValidationError as exc:
        raise SetupError(f"the current settings are invalid: {_first_error(exc)}") from None
    github_url = options.github_url.rstrip("/")
    public_url = (options.public_url or settings.public_url).rstrip("/")
    api_url, derived = _api_url(github_url, settings)
    base = load_manifest(options.manifest_path) if options.manifest_path else None
    flow = ManifestFlow(
        base_manifest=base,
        github_url=github_url,
        api_url=api_url,
        public_url=public_url,
        org=options.org,
    )
    url = flow.start(options.port)
    try:
        if urlsplit(public_url).hostname in LOOPBACK:
            notify(
                f"GitHub cannot deliver webhooks to {public_url}; pass --public-url (a public "
                "host or a tunnel) or change the webhook URL in the app's settings later"
            )
        notify(
            f"open {url} and press the button to register the app on {github_url} "
            "(waiting for GitHub's redirect; Ctrl-C to stop)"
        )
        if on_ready is not None:
            on_ready(url)
        app = flow.wait()
    finally:
        flow.close()
    values = {name: str(app[key]) for name, key in WRITTEN.items()}
    if options.public_url:
        values["GHAPP_PUBLIC_URL"] = public_url
    if derived and api_url != "https://api.github.com":  # GitHub Enterprise Server
        values["GHAPP_GITHUB_API_URL"] = api_url
        values["GHAPP_GIT_URL"] = github_url
    try:
        write_env_file(options.env_file, values)
    except (OSError, ValueError) as exc:
        raise SetupError(f"could not write {options.env_file}: {exc}") from None
    return SetupResult(app=app, env_file=options.env_file, written=list(values))


def _api_url(github_url: str, settings: Settings) -> tuple[str, bool]:
    """GitHub's REST API for ``github_url`` (GHAPP_GITHUB_API_URL wins); derived or not."""
    if "github_api_url" in settings.model_fields_set:
        return settings.github_api_url, False
    host = urlsplit(github_url).hostname or ""
    if host in ("github.com", "www.github.com"):
        return "https://api.github.com", True
    return f"{github_url}/api/v3", True


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"GHAPP_{where.upper()}: {error['msg']}"


def load_manifest(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SetupError(f"cannot read the manifest {path}: {exc}") from None
    if not isinstance(data, dict):
        raise SetupError(f"the manifest {path} is not a mapping")
    return data


# == the local page ====================================================================


class ManifestFlow:
    """The local page and callback; :meth:`wait` returns GitHub's answer to the code."""

    def __init__(
        self,
        *,
        base_manifest: dict[str, Any] | None,
        github_url: str,
        api_url: str,
        public_url: str,
        org: str | None = None,
    ) -> None:
        self.base_manifest = base_manifest
        self.github_url = github_url.rstrip("/")
        self.api_url = api_url.rstrip("/")
        self.public_url = public_url
        self.org = org
        self.state = secrets.token_urlsafe(24)
        self.manifest: dict[str, Any] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._answer: dict[str, Any] | None = None
        self._error: str | None = None

    @property
    def form_action(self) -> str:
        if self.org:
            page = f"{self.github_url}/organizations/{quote(self.org, safe='')}/settings/apps/new"
        else:
            page = f"{self.github_url}/settings/apps/new"
        return f"{page}?{urlencode({'state': self.state})}"

    def start(self, port: int) -> str:
        """Serve on 127.0.0.1:``port`` (0: any free port) from a thread; the page's URL."""

        class Handler(_Handler):
            flow = self

        try:
            server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        except OSError as exc:
            raise SetupError(
                f"cannot serve the setup page on 127.0.0.1:{port} ({exc.strerror}); "
                "pass another --port"
            ) from None
        self._server = server
        bound = server.server_address[1]
        from ghapp.github.manifest import build_manifest

        self.manifest = build_manifest(
            self.base_manifest,
            public_url=self.public_url,
            redirect_url=f"http://127.0.0.1:{bound}/callback",
        )
        self._thread = threading.Thread(
            target=server.serve_forever, name="ghapp-setup", daemon=True
        )
        self._thread.start()
        return f"http://127.0.0.1:{bound}/"

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Block until GitHub's redirect was handled: the new app, or :class:`SetupError`."""
        if not self._done.wait(timeout):
            raise SetupError("no answer from GitHub in time")
        if self._error is not None:
            raise SetupError(self._error)
        assert self._answer is not None
        return self._answer

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    # -- pages ---------------------------------------------------------------------------

    def form_page(self) -> str:
        where = f"the organisation {self.org}" if self.org else "your account"
        manifest = html.escape(json.dumps(self.manifest), quote=True)
        hook = self.manifest["hook_attributes"]["url"]
        return _page(
            "Register ghapp on GitHub",
            f"<p>This registers a GitHub App for {html.escape(where)} on "
            f"{html.escape(self.github_url)} (you can rename it on the next page). GitHub "
            f"will send its webhooks to <code>{html.escape(hook)}</code>.</p>"
            f'<form action="{html.escape(self.form_action, quote=True)}" method="post">'
            f'<input type="hidden" name="manifest" value="{manifest}">'
            '<button type="submit">Create the GitHub App</button></form>',
        )

    def callback(self, query: dict[str, list[str]]) -> tuple[int, str, bool]:
        """GitHub's redirect: (status, page, whether the flow is over)."""
        state = (query.get("state") or [""])[0]
        code = (query.get("code") or [""])[0]
        if not secrets.compare_digest(state.encode(), self.state.encode()):
            page = _page(
                "Wrong state",
                "<p>This answer does not belong to this <code>ghapp "
                "setup</code> run (its state differs); nothing was done.</p>",
            )
            return HTTPStatus.BAD_REQUEST, page, False
        if not code:
            page = _page("No code", "<p>GitHub's answer carried no code; nothing was done.</p>")
            return HTTPStatus.BAD_REQUEST, page, False
        with self._lock:
            if self._done.is_set() or self._answer is not None or self._error is not None:
                return HTTPStatus.CONFLICT, _page("Done", "<p>This run is over.</p>"), False
            try:
                self._answer = self.exchange(code)
            except SetupError as exc:
                self._error = str(exc)
                failed = _page("Failed", f"<p>{html.escape(str(exc))}</p>")
                return HTTPStatus.BAD_GATEWAY, failed, True
        app = self._answer
        install = f"{app['html_url'].rstrip('/')}/installations/new"
        page = _page(
            "Registered",
            f"<p>The GitHub App <b>{html.escape(str(app['name']))}</b> is registered; "
            "<code>ghapp setup</code> writes its credentials in the terminal. Next: "
            f'<a href="{html.escape(install, quote=True)}">install it</a> on your '
            "repositories.</p>",
        )
        return HTTPStatus.OK, page, True

    def exchange(self, code: str) -> dict[str, Any]:
        """``POST /app-manifests/{code}/conversions``: the app with its credentials."""
        url = f"{self.api_url}/app-manifests/{quote(code, safe='')}/conversions"
        headers = {
            "Accept": "application/vnd.github+json",
            "User-Agent": "ghapp",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        import httpx

        try:
            response = httpx.post(url, headers=headers, timeout=30)
        except httpx.HTTPError as exc:
            message = f"could not reach {self.api_url} to exchange the code: {exc}"
            raise SetupError(message) from None
        if response.status_code == HTTPStatus.NOT_FOUND:
            raise SetupError(
                "GitHub does not know this code (404): a manifest code works once and expires "
                "an hour after the app was created; run `ghapp setup` again (and delete the "
                "app it left on GitHub, if any)"
            )
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code != HTTPStatus.CREATED or not isinstance(answer, dict):
            said = answer.get("message") if isinstance(answer, dict) else None
            raise SetupError(
                f"GitHub answered {response.status_code} to the code exchange"
                + (f": {said}" if said else "")
            )
        missing = [
            key for key in (*WRITTEN.values(), "slug", "name", "html_url") if not answer.get(key)
        ]
        if missing:
            raise SetupError(f"GitHub's answer lacks {', '.join(missing)}")
        return answer

    def finished(self) -> None:
        self._done.set()


class _Handler(BaseHTTPRequestHandler):
    flow: ManifestFlow
    server_version = "ghapp-setup"

    def do_GET(self) -> None:  # http.server's name
        url = urlsplit(self.path)
        if url.path == "/":
            self._send(HTTPStatus.OK, self.flow.form_page())
        elif url.path == "/callback":
            status, page, over = self.flow.callback(parse_qs(url.query))
            self._send(status, page)
            if over:  # after the answer is out, so the browser gets the page
                self.flow.finished()
        else:
            self._send(HTTPStatus.NOT_FOUND, _page("Not found", "<p>Nothing here.</p>"))

    def _send(self, status: int, page: str) -> None:
        body = page.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the terminal shows what matters


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;"
        "line-height:1.5}button{font-size:1.1em;padding:.4em 1em}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


# == .env ==============================================================================


def write_env_file(path: Path, values: dict[str, str]) -> None:
    """Set ``values`` in the dotenv file ``path`` (mode 600), keeping its other lines.

    Values are double-quoted where needed, so multi-line ones (a PEM) read back exactly
    with python-dotenv, which pydantic-settings uses.
    """
    from dotenv.parser import parse_stream

    kept: list[str] = []
    if path.exists():
        with path.open(encoding="utf-8") as stream:
            for binding in parse_stream(stream):
                if binding.key not in values:
                    kept.append(binding.original.string)
    text = "".join(kept)
    if text and not text.endswith("\n"):
        text += "\n"
    text += "".join(f"{name}={_dotenv_value(value)}\n" for name, value in values.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _dotenv_value(value: str) -> str:
    if "${" in value:  # python-dotenv would expand it, whatever the quoting
        raise ValueError("a value contains '${', which dotenv files cannot hold literally")
    if value and all(c.isalnum() or c in "-_.:/@+" for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
