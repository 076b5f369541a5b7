"""GitHub Enterprise Server: every endpoint the GitHub stand-in serves (every call ghapp
makes; the contract plugin fails a test that calls anything else) is documented by
GitHub's description of api.github.com *and* of GitHub Enterprise Server 3.17, and what
ghapp sends is described the same way in both: the same path, query and body. What differs
in the answers is listed in the README ("GitHub Enterprise Server and proxies")."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from ghapp.standins.github import GitHubStandIn

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "npm" / "claude-code" / "node_modules" / "@octokit" / "openapi" / "generated"
GHES = "ghes-3.17.json"
# Where the two descriptions take different requests, and why that does not touch ghapp.
DIFFERENT_REQUESTS = {
    # The permissions a token may be narrowed to (each edition has its own); ghapp asks for
    # the installation's own, with no body.
    "apps/create-installation-access-token",
}
PLACEHOLDER = re.compile(r"\{[^}]+\}")


@functools.cache
def description(name: str) -> dict[str, Any]:
    path = GENERATED / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `npm ci` in npm/claude-code")
    return json.loads(path.read_text())


def resolved(doc: dict[str, Any], node: Any) -> Any:
    """``node`` with every ``$ref`` replaced by what it names (request sides are small)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = doc
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return resolved(doc, target)
        return {
            key: resolved(doc, value)
            for key, value in node.items()
            if key not in ("description", "examples", "example", "x-github", "summary")
        }
    if isinstance(node, list):
        return [resolved(doc, value) for value in node]
    return node


def operation(name: str, method: str, template: str) -> dict[str, Any] | None:
    doc = description(name)
    shape = PLACEHOLDER.sub("{}", template)
    for path, item in doc["paths"].items():
        if PLACEHOLDER.sub("{}", path) == shape and method.lower() in item:
            return {"path": path, **item[method.lower()]}
    return None


def request_side(name: str, op: dict[str, Any]) -> dict[str, Any]:
    doc = description(name)
    parameters = sorted(
        (resolved(doc, p) for p in op.get("parameters", [])), key=lambda p: (p["in"], p["name"])
    )
    return {"parameters": parameters, "body": resolved(doc, op.get("requestBody"))}


def served() -> list[tuple[str, str]]:
    return sorted({(route.method, route.template) for route in GitHubStandIn()._routes})


@pytest.mark.parametrize(("method", "template"), served())
def test_each_call_is_documented_alike_for_github_and_enterprise_server(method, template) -> None:
    dotcom = operation("api.github.com.json", method, template)
    enterprise = operation(GHES, method, template)
    assert dotcom is not None, f"{method} {template} is not in GitHub's description"
    assert enterprise is not None, f"{method} {template} is not in GHES 3.17's description"
    assert dotcom["operationId"] == enterprise["operationId"]
    alike = request_side("api.github.com.json", dotcom) == request_side(GHES, enterprise)
    assert alike is (dotcom["operationId"] not in DIFFERENT_REQUESTS)


def test_the_enterprise_description_serves_the_api_below_api_v3() -> None:
    assert [s["url"] for s in description(GHES)["servers"]] == ["{protocol}://{hostname}/api/v3"]
