"""Deployment files tell the truth: app.yml, Procfile, Dockerfile and manifests/.

* ``app.yml`` asks for exactly the events the code routes and the permissions its GitHub
  API calls need (``ghapp.github.manifest`` says which code needs each).
* Every Kubernetes manifest validates against Kubernetes' OpenAPI schemas (offline, strict:
  unknown fields fail), its probes point at routes the app has, its variables are settings.
* Every command in them parses with the real ``ghapp`` command line, and the Dockerfile
  installs and runs ghapp the way the README shows.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import click
import kubernetes_validate
import pytest
import typer
import yaml
from starlette.routing import Route

from ghapp.app import create_app
from ghapp.cli.main import app as cli_app
from ghapp.github import manifest
from ghapp.jobs.spec import KNOWN_EVENTS
from ghapp.settings import Settings
from ghapp.webhooks.normalize import ITEM_EVENTS
from ghapp.webhooks.routing import HANDLED_EVENTS, router

ROOT = Path(__file__).parent.parent
SRC = ROOT / "src" / "ghapp"
README = (ROOT / "README.md").read_text()
APP_YML = yaml.safe_load((ROOT / "app.yml").read_text())
MANIFESTS = ROOT / "manifests"
KUBERNETES_VERSION = "1.30"
SETTINGS = {f"GHAPP_{name.upper()}" for name in Settings.model_fields}

# GitHub sends these to every app; they cannot be subscribed to.
ALWAYS_SENT = {"installation", "installation_repositories"}


def documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                found.append((path.name, doc))
    return found


def workload(file: str, kind: str = "Deployment") -> dict[str, Any]:
    (doc,) = [d for name, d in documents() if name == file and d["kind"] == kind]
    return doc


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]


def sh_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README, re.S)


def readme_command_lines() -> set[str]:
    """Every command line of the README's sh blocks, comments and `[...]` hints dropped."""
    lines = set()
    for block in sh_blocks():
        for line in block.splitlines():
            command = line.split("  #")[0].strip()
            if command:
                lines.add(command)
    return lines


def app_routes() -> set[str]:
    settings = Settings(_env_file=None, database_url="sqlite+aiosqlite:///:memory:")  # type: ignore[call-arg]
    return {r.path for r in create_app(settings).routes if isinstance(r, Route)}


def parse_cli(args: list[str]) -> None:
    """Parse ``args`` (after ``ghapp``) with the real command line, running nothing."""
    command: click.Command = typer.main.get_command(cli_app)
    name = "ghapp"
    while isinstance(command, click.Group):
        ctx = click.Context(command, info_name=name)
        name, sub, args = command.resolve_command(ctx, args)
        assert sub is not None, f"unknown command {name!r}"
        command = sub
    command.make_context(name, list(args))  # raises on unknown options or bad values


# -- app.yml ---------------------------------------------------------------------------


def test_app_yml_events_are_exactly_what_the_code_routes() -> None:
    events = APP_YML["default_events"]
    assert len(events) == len(set(events))
    assert events == list(manifest.EVENTS)
    routed = set(router._shallow_routes) | set(router._deep_routes)
    assert set(events) == routed - ALWAYS_SENT  # a handler for each, none without one
    jobs = set(events) - {"push", "check_run", "check_suite"}  # config as code; re-runs
    assert jobs == set(KNOWN_EVENTS)  # what jobs may trigger on
    assert jobs == ITEM_EVENTS  # what queues runs
    assert set(events) <= HANDLED_EVENTS
    assert ALWAYS_SENT <= routed


# Which permission each GitHub API call needs (GitHub's "Permissions required for GitHub
# Apps"): comments, reactions and search work on issues and on pull requests, so they need
# both issues and pull_requests; POST/PATCH write, GET read.
ENDPOINTS: list[tuple[str, str, set[str]]] = [
    ("GET", r"/repos/\{[\w.]+\}/issues/\{[\w.]+\}/comments", {"issues", "pull_requests"}),
    ("POST", r"/repos/\{[\w.]+\}/issues/\{[\w.]+\}/comments", {"issues", "pull_requests"}),
    ("PATCH", r"/repos/\{[\w.]+\}/issues/comments/\{[\w.]+\}", {"issues", "pull_requests"}),
    (
        "POST",
        r"/repos/\{[\w.]+\}/issues/comments/\{[\w.]+\}/reactions",
        {"issues", "pull_requests"},
    ),
    ("POST", r"/repos/\{[\w.]+\}/issues", {"issues"}),
    ("GET", r"/repos/\{[\w.]+\}/issues", {"issues"}),  # lists pull requests too
    ("PATCH", r"/repos/\{[\w.]+\}/issues/\{[\w.]+\}", {"issues"}),
    ("GET", r"/repos/\{[\w.]+\}/issues/\{[\w.]+\}", {"issues"}),  # is #N an issue here?
    ("GET", r"/search/issues", {"issues", "pull_requests"}),
    ("GET", r"/repos/\{[\w.]+\}/collaborators/\{[\w.]+\}/permission", {"metadata"}),
    ("GET", r"/repos/\{[\w.]+\}/contents(/.*)?", {"contents"}),
    ("GET", r"/repos/\{[\w.]+\}/installation", set()),  # the app JWT: no permission
    ("GET", r"/app/hook/deliveries", set()),  # the app JWT: no permission
    ("POST", r"/app/hook/deliveries/\{[\w.]+\}/attempts", set()),  # the app JWT
    ("GET", r"/app", set()),  # the app JWT: no permission
    ("GET", r"/app/installations", set()),  # the app JWT: no permission
    ("GET", r"/installation/repositories", {"metadata"}),  # any installation token
    ("POST", r"/repos/\{[\w.]+\}/statuses/\{[\w.]+\}", {"statuses"}),
    ("GET", r"/repos/\{[\w.]+\}/pulls(/\{[\w.]+\})?", {"pull_requests"}),
    ("POST", r"/repos/\{[\w.]+\}/pulls", {"pull_requests"}),
    ("PATCH", r"/repos/\{[\w.]+\}/pulls/\{[\w.]+\}", {"pull_requests"}),
    ("POST", r"/repos/\{[\w.]+\}/check-runs", {"checks"}),
    ("PATCH", r"/repos/\{[\w.]+\}/check-runs/\{[\w.]+\}", {"checks"}),
    ("GET", r"/repos/\{[\w.]+\}/commits/\{[\w.]+\}/check-runs", {"checks"}),
    # structured actions on an issue or a pull request (labels, assignees)
    ("GET", r"/repos/\{[\w.]+\}/labels", {"issues", "pull_requests"}),
    ("POST", r"/repos/\{[\w.]+\}/issues/\{[\w.]+\}/labels", {"issues", "pull_requests"}),
    ("GET", r"/repos/\{[\w.]+\}/assignees/\{[\w.]+\}", {"issues"}),
    ("POST", r"/repos/\{[\w.]+\}/issues/\{[\w.]+\}/assignees", {"issues", "pull_requests"}),
    # follow-ups: a pull request's review comments, and a reply in a review thread
    ("GET", r"/repos/\{[\w.]+\}/pulls/\{[\w.]+\}/comments", {"pull_requests"}),
    ("POST", r"/repos/\{[\w.]+\}/pulls/\{[\w.]+\}/comments/\{[\w.]+\}/replies", {"pull_requests"}),
]
EVENT_PERMISSIONS = {
    "issues": "issues",
    "issue_comment": "issues",
    "pull_request": "pull_requests",
    "pull_request_review": "pull_requests",
    "pull_request_review_comment": "pull_requests",
    "push": "contents",
    "check_run": "checks",
    "check_suite": "checks",
}
CALL = re.compile(r"\.(getitem|getiter|post|patch|put|delete)\(\s*f?\"(/[^\"]*)\"")
VERBS = {
    "getitem": "GET",
    "getiter": "GET",
    "post": "POST",
    "patch": "PATCH",
    "put": "PUT",
    "delete": "DELETE",
}


def github_calls() -> list[tuple[str, str, str]]:
    """(file, method, path template) of every GitHub API call in the code."""
    calls = []
    for path in sorted(SRC.rglob("*.py")):
        if "standins" in path.parts or path.parts[-2] in ("cli", "api", "dashboard", "demo"):
            continue  # the stand-ins serve GitHub; the CLI, API and demo call ghapp itself
        for verb, template in CALL.findall(path.read_text()):
            path_only = template.split("?")[0]  # the query string needs no permission
            calls.append((path.relative_to(SRC).as_posix(), VERBS[verb], path_only))
    return calls


def test_app_yml_permissions_are_exactly_what_the_api_calls_need() -> None:
    assert APP_YML["default_permissions"] == manifest.PERMISSIONS
    calls = github_calls()
    assert {file for file, _, _ in calls} >= {
        "worker/report.py",
        "worker/authorize.py",
        "worker/items.py",
    }
    needed: dict[str, str] = {}
    for file, method, template in calls:
        matches = [
            perms
            for m, pattern, perms in ENDPOINTS
            if m == method and re.fullmatch(pattern, template)
        ]
        assert matches, f"{file}: {method} {template} is not in ENDPOINTS: add its permission"
        for name in matches[0]:
            access = "write" if method in ("POST", "PATCH", "PUT", "DELETE") else "read"
            if needed.get(name) != "write":
                needed[name] = access
    # worker/checkout.py clones with the installation token: contents read.
    assert '"clone"' in (SRC / "worker" / "checkout.py").read_text()
    needed.setdefault("contents", "read")
    # worker/publish.py pushes ghapp/<job>/<item> branches with the token: contents write.
    assert '"push"' in (SRC / "worker" / "publish.py").read_text()
    needed["contents"] = "write"
    for event in APP_YML["default_events"]:  # GitHub sends an event only with its permission
        needed.setdefault(EVENT_PERMISSIONS[event], "read")
    assert needed == APP_YML["default_permissions"]


def test_app_yml_is_the_built_in_manifest_and_names_the_webhook() -> None:
    assert APP_YML["name"] == manifest.NAME
    assert APP_YML["description"] == manifest.DESCRIPTION
    assert APP_YML["public"] is False
    assert APP_YML["hook_attributes"]["active"] is True
    assert APP_YML["hook_attributes"]["url"].endswith(manifest.WEBHOOK_PATH)
    assert {"url", "redirect_url"} <= set(APP_YML)
    assert manifest.WEBHOOK_PATH in app_routes()
    urls = {"public_url": "https://ghapp.example.com", "redirect_url": "http://127.0.0.1:1/cb"}
    from_file = manifest.build_manifest(APP_YML, **urls)
    assert from_file == manifest.build_manifest(None, **urls)
    assert from_file["hook_attributes"] == {
        "url": "https://ghapp.example.com/webhooks/github",
        "active": True,
    }
    json.dumps(from_file)  # posted as JSON


# -- Procfile and Dockerfile -------------------------------------------------------------


def procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            assert name not in entries
            entries[name.strip()] = command.strip()
    return entries


def test_procfile_has_web_worker_and_release() -> None:
    entries = procfile()
    assert entries == {
        "web": "ghapp serve --no-worker --host 0.0.0.0 --port $PORT",
        "worker": "ghapp worker",
        "release": "ghapp db upgrade",
    }
    for command in entries.values():
        args = shlex.split(command.replace("$PORT", "5000"))
        assert args[0] == "ghapp"
        parse_cli(args[1:])
        assert command in README


def dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [
        tuple(line.split(None, 1))
        for line in text.splitlines()  # type: ignore[misc]
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_dockerfile_installs_and_runs_as_the_readme_shows() -> None:
    instructions = dockerfile()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    runs = [arg for op, arg in instructions if op == "RUN"]
    assert any(re.search(r"apt-get install .*\bgit\b", run) for run in runs)
    # The README's deployment install: the locked versions, not editable.
    readme_install = (
        "python3 -m pip install uv==0.13.9 && python3 -m uv sync --locked --no-editable"
    )
    assert readme_install in [block.strip() for block in sh_blocks()]
    assert any(" ".join(run.split()).startswith(readme_install) for run in runs), runs
    assert ("ENV", "UV_PROJECT_ENVIRONMENT=/opt/ghapp PATH=/opt/ghapp/bin:$PATH") in [
        (op, " ".join(arg.split())) for op, arg in instructions
    ]
    (cmd,) = [json.loads(arg) for op, arg in instructions if op == "CMD"]
    assert cmd == ["ghapp", "serve", "--host", "0.0.0.0"]
    assert " ".join(cmd) in readme_command_lines()
    parse_cli(cmd[1:])
    (user,) = [arg for op, arg in instructions if op == "USER"]
    assert user not in ("root", "0")
    assert ("EXPOSE", "8000") in instructions


# -- Kubernetes --------------------------------------------------------------------------


def test_every_manifest_validates_against_the_kubernetes_schemas() -> None:
    found = documents()
    assert {name for name, _ in found} == {
        "configmap.yaml",
        "migrate.yaml",
        "secret.example.yaml",
        "web.yaml",
        "worker.yaml",
    }
    for name, doc in found:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name} {doc['kind']}: {exc.message}")
    kinds = sorted((name, doc["kind"]) for name, doc in found)
    assert kinds == [
        ("configmap.yaml", "ConfigMap"),
        ("migrate.yaml", "Job"),
        ("secret.example.yaml", "Secret"),
        ("web.yaml", "Deployment"),
        ("web.yaml", "Service"),
        ("worker.yaml", "Deployment"),
    ]


def test_the_schema_check_catches_mistakes() -> None:
    doc = workload("web.yaml")
    probe = pod_spec(doc)["containers"][0]["readinessProbe"]
    probe["httpGet"]["pth"] = probe["httpGet"].pop("path")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_probes_and_metrics_point_at_routes_the_app_has() -> None:
    routes = app_routes()
    assert {"/readyz", "/healthz", "/metrics"} <= routes
    web = workload("web.yaml")
    (container,) = pod_spec(web)["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["command"][container["command"].index("--port") + 1] == str(ports["http"])
    annotations = web["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] in routes
    assert annotations["prometheus.io/port"] == str(ports["http"])
    service = workload("web.yaml", "Service")
    assert service["spec"]["selector"] == web["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    worker = workload("worker.yaml")
    (container,) = pod_spec(worker)["containers"]
    metrics_port = container["command"][container["command"].index("--metrics-port") + 1]
    assert [p["containerPort"] for p in container["ports"]] == [int(metrics_port)]
    annotations = worker["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == metrics_port


def test_commands_resources_and_graceful_stop() -> None:
    commands = {
        "web.yaml": ["ghapp", "serve", "--no-worker", "--host", "0.0.0.0", "--port", "8000"],
        "worker.yaml": ["ghapp", "worker", "--concurrency", "4", "--metrics-port", "9090"],
        "migrate.yaml": ["ghapp", "db", "upgrade"],
    }
    for file, command in commands.items():
        doc = workload(file, "Job" if file == "migrate.yaml" else "Deployment")
        spec = pod_spec(doc)
        (container,) = spec["containers"]
        assert container["command"] == command
        parse_cli(command[1:])
        assert set(container["resources"]) == {"requests", "limits"}
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert spec["securityContext"]["runAsNonRoot"] is True
    assert pod_spec(workload("worker.yaml"))["terminationGracePeriodSeconds"] >= 60
    assert pod_spec(workload("migrate.yaml", "Job"))["restartPolicy"] in ("Never", "OnFailure")


def test_every_variable_is_a_setting_and_comes_from_the_secret_and_configmap() -> None:
    secret = workload("secret.example.yaml", "Secret")
    config = workload("configmap.yaml", "ConfigMap")
    assert set(secret["stringData"]) == {
        "GHAPP_DATABASE_URL",
        "GHAPP_WEBHOOK_SECRET",
        "GHAPP_APP_ID",
        "GHAPP_PRIVATE_KEY",
        "GHAPP_SECRET_KEY",
        "GHAPP_ADMIN_TOKEN",
    }
    assert {"GHAPP_PUBLIC_URL", "GHAPP_LOG_LEVEL"} <= set(config["data"])
    names = set(secret["stringData"]) | set(config["data"])
    assert names <= SETTINGS, names - SETTINGS
    assert not set(secret["stringData"]) & set(config["data"])
    for value in secret["stringData"].values():  # placeholders only, never real values
        assert "CHANGE-ME" in value
    Settings.model_validate(  # the non-secret values are valid settings as they stand
        {key.removeprefix("GHAPP_").lower(): value for key, value in config["data"].items()}
    )
    for file, kind in (
        ("web.yaml", "Deployment"),
        ("worker.yaml", "Deployment"),
        ("migrate.yaml", "Job"),
    ):
        (container,) = pod_spec(workload(file, kind))["containers"]
        sources = container["envFrom"]
        assert {"configMapRef": {"name": config["metadata"]["name"]}} in sources
        assert {"secretRef": {"name": secret["metadata"]["name"]}} in sources
        explicit = {entry["name"] for entry in container.get("env", [])}
        assert explicit <= SETTINGS


def test_readme_applies_the_manifests_in_order() -> None:
    assert "## Deployment" in README
    (block,) = [b for b in sh_blocks() if "kubectl apply" in b]
    applied = re.findall(r"kubectl apply -f (\S+)", block)
    assert applied == [
        "secret.yaml",
        "manifests/configmap.yaml",
        "manifests/migrate.yaml",
        "manifests/web.yaml",
        "manifests/worker.yaml",
    ]
    assert "cp manifests/secret.example.yaml secret.yaml" in block
    for path in applied[1:]:
        assert (ROOT / path).is_file()
    assert "docker build" in README and "ghapp setup" in README
