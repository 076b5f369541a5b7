"""The GitHub stand-in held to GitHub's own API description can fail: undocumented calls,
bodies and parameters GitHub would refuse, answers that lack what GitHub documents, the
headers GitHub asks for, GitHub Enterprise Server's own description, and the test plugin
that fails a test for any of them (tests/github_contract.py)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ghapp.standins.github import GitHubStandIn
from ghapp.standins.github.contract import Contract, Violation
from ghapp.standins.github.reference import Reference
from tests.github_contract import DOTCOM, GHES

DOCUMENTED = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
REPO = "acme/widgets"


@dataclass
class Served:
    gh: GitHubStandIn
    http: httpx.AsyncClient


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    gh = GitHubStandIn()
    gh.add_installation(1, "acme", "Organization")
    gh.add_repo(REPO, 1)
    gh.add_issue(REPO, 1, title="A bug")
    headers = {**DOCUMENTED, "Authorization": f"token {gh.issue_token(1)}"}
    async with gh.serve() as base, httpx.AsyncClient(base_url=base, headers=headers) as http:
        yield Served(gh, http)


def problems(violations: list[Violation]) -> list[tuple[str, str, int, str]]:
    """The contract's own findings (openapi-core's, on the first call of an operation and
    status in the run, depend on what ran before: they are tested on their own below)."""
    return [
        (v.side, v.operation, v.status, v.problem) for v in violations if v.side != "openapi-core"
    ]


def test_the_suite_checks_every_stand_in_against_githubs_description() -> None:
    """The plugin gives every stand-in made without a contract the run's (one per file)."""
    assert GitHubStandIn().contract is Contract.load(DOTCOM)
    assert GitHubStandIn(path_prefix="/api/v3").contract is Contract.load(GHES)
    assert Contract.load(DOTCOM).name == "api.github.com.json"


async def test_an_undocumented_call_is_refused_404_and_recorded(served: Served) -> None:
    deleted = await served.http.delete(f"/repos/{REPO}/issues/1")  # GitHub has no such call
    typo = await served.http.get(f"/repos/{REPO}/isues")
    assert (deleted.status_code, deleted.json()["message"]) == (404, "Not Found")
    assert typo.status_code == 404
    assert served.gh.issue(REPO, 1)["state"] == "open"
    assert problems(served.gh.take_violations()) == [
        (
            "request",
            "",
            404,
            "DELETE is not described for /repos/{owner}/{repo}/issues/{issue_number}",
        ),
        (
            "request",
            "",
            404,
            "/repos/acme/widgets/isues is not a path GitHub's api.github.com.json describes",
        ),
    ]


async def test_a_body_github_would_refuse_gets_422_and_is_recorded(served: Served) -> None:
    comment = served.gh.add_comment(REPO, 1, "/claude look")
    path = f"/repos/{REPO}/issues/comments/{comment['id']}/reactions"
    refused = await served.http.post(path, json={"content": "eyez"})
    assert refused.status_code == 422
    assert '"eyez" is not one of' in refused.json()["message"]
    assert served.gh.reactions_on(comment["id"]) == []  # not carried out
    [violation] = served.gh.take_violations()
    assert (violation.side, violation.operation, violation.status) == (
        "request",
        "reactions/create-for-issue-comment",
        422,
    )
    assert violation.problem.startswith('body $.content: "eyez" is not one of')
    accepted = await served.http.post(path, json={"content": "eyes"})
    assert accepted.status_code == 201
    assert served.gh.violations == []


async def test_a_parameter_of_the_wrong_form_is_caught(served: Served) -> None:
    paged = await served.http.get(f"/repos/{REPO}/issues", params={"per_page": "lots"})
    state = await served.http.get(f"/repos/{REPO}/issues", params={"state": "opened"})
    ignored = await served.http.get(f"/repos/{REPO}/issues", params={"label": "bug"})
    assert (paged.status_code, state.status_code) == (422, 422)
    assert ignored.status_code == 200  # GitHub ignores it: the caller meant "labels"
    assert problems(served.gh.take_violations()) == [
        (
            "request",
            "issues/list-for-repo",
            422,
            "query parameter per_page='lots' is not an integer",
        ),
        (
            "request",
            "issues/list-for-repo",
            422,
            "query parameter state='opened' is not one of open, closed, all",
        ),
        ("request", "issues/list-for-repo", 0, "query parameter 'label' is not described"),
    ]


async def test_the_headers_github_documents_are_expected(served: Served) -> None:
    bare = await served.http.get(
        f"/repos/{REPO}/issues/1", headers={"Accept": "*/*", "X-GitHub-Api-Version": "latest"}
    )
    assert bare.status_code == 200  # GitHub answers anyway, with its defaults
    assert [v.problem for v in served.gh.take_violations()] == [
        "Accept '*/*' names no application/vnd.github media type",
        "X-GitHub-Api-Version 'latest' is not a version date",
    ]


async def test_an_answer_missing_what_github_documents_is_caught(served: Served) -> None:
    # A pull request's state is "open" or "closed"; GitHub reports a merged one as closed.
    served.gh.add_issue(REPO, 2, title="Merged", pull=True, state="merged")
    answer = await served.http.get(f"/repos/{REPO}/pulls/2")
    assert answer.status_code == 200
    assert problems(served.gh.take_violations()) == [
        ("response", "pulls/get", 200, '$.state: "merged" is not one of "open" or "closed"')
    ]


def test_each_field_github_requires_is_checked() -> None:
    contract = Contract.load(DOTCOM)
    gh = GitHubStandIn()
    gh.add_installation(1, "acme")
    gh.add_repo(REPO, 1)
    issue = gh.add_issue(REPO, 1, title="A bug")
    operation, _ = contract.find("GET", f"/repos/{REPO}/issues/1")
    assert operation is not None and operation.operation_id == "issues/get"
    assert contract.check_response(operation, 200, json.dumps(issue).encode()) == []
    del issue["title"]
    issue["created_at"] = "yesterday"
    assert contract.check_response(operation, 200, json.dumps(issue).encode()) == [
        '$: "title" is a required property',
        '$.created_at: "yesterday" is not a "date-time"',
    ]
    assert contract.check_response(operation, 201, b"{}") == [
        "status 201 is not described for issues/get"
    ]
    # GitHub may answer anything with 404, 401, 5xx… whether described or not.
    assert contract.check_response(operation, 503, b'{"message": "down"}') == []


async def test_injected_faults_are_outside_the_contract(served: Served) -> None:
    served.gh.inject("GET", r"/issues/1$", 502, body={"unexpected": True})
    served.gh.inject("GET", r"/issues/1$", 200, body={"id": "not a number"})
    assert (await served.http.get(f"/repos/{REPO}/issues/1")).status_code == 502
    assert (await served.http.get(f"/repos/{REPO}/issues/1")).status_code == 200
    assert served.gh.violations == []


async def test_enterprise_server_is_held_to_its_own_description() -> None:
    gh = GitHubStandIn(path_prefix="/api/v3")
    gh.add_installation(1, "acme", "Organization")
    gh.add_repo(REPO, 1)
    headers = {**DOCUMENTED, "Authorization": f"token {gh.issue_token(1)}"}
    async with gh.serve() as base, httpx.AsyncClient(base_url=base, headers=headers) as http:
        assert (await http.get(f"/repos/{REPO}")).status_code == 200
        assert gh.violations == []
        # GitHub.com has sub-issues; GHES 3.17 does not.
        assert (await http.get(f"/repos/{REPO}/issues/1/sub_issues")).status_code == 404
    assert problems(gh.take_violations()) == [
        (
            "request",
            "",
            404,
            f"/repos/{REPO}/issues/1/sub_issues is not a path GitHub's ghes-3.17.json describes",
        )
    ]


def test_the_plugin_fails_a_test_that_breaks_the_contract(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        test_calls="""
        import httpx
        from ghapp.standins.github import GitHubStandIn

        HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}

        def call(path, take=False):
            gh = GitHubStandIn()
            gh.add_installation(1, "acme")
            gh.add_repo("acme/widgets", 1)
            headers = {**HEADERS, "Authorization": f"token {gh.issue_token(1)}"}
            with gh.serve_in_thread() as base:
                status = httpx.get(base + path, headers=headers).status_code
            if take:
                assert gh.take_violations()
            return status

        def test_valid():
            assert call("/repos/acme/widgets") == 200

        def test_invalid():
            assert call("/repos/acme/widgets/isues") == 404

        def test_invalid_on_purpose():
            assert call("/repos/acme/widgets/nope", take=True) == 404
        """
    )
    root = str(Path(__file__).resolve().parent.parent)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    )
    result = pytester.runpytest_subprocess("-p", "tests.github_contract", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*GitHub's API description * was broken 1 time(s) during call:",
            "*request GET /repos/acme/widgets/isues -> 404: *",
            "*ghapp used 1 distinct GitHub operations*",
        ]
    )


def test_openapi_core_confirms_the_first_call_of_each_operation_and_status() -> None:
    reference = Reference(Path(DOTCOM))  # its own, not the run's: nothing seen yet
    assert reference.first("issues/get", 200) and not reference.first("issues/get", 200)
    gh = GitHubStandIn()
    gh.add_installation(1, "acme")
    gh.add_repo(REPO, 1)
    issue = gh.add_issue(REPO, 1, title="A bug")
    path, documented = f"/repos/{REPO}/issues/1", {"200", "301", "404", "410", "304"}

    def verdict(body: dict, status: int = 200, method: str = "GET", sent: bytes = b"") -> list[str]:
        answer = json.dumps(body).encode()
        return reference.problems(method, path, [], {}, sent, status, answer, documented)

    assert verdict(issue) == []
    del issue["title"]
    [missing] = verdict(issue)
    assert (
        missing.startswith("answer 200: InvalidData")
        and "'title' is a required property" in missing
    )
    assert verdict({"message": "Bad credentials"}, status=401) == []  # GitHub may answer 401
    reaction = f"/repos/{REPO}/issues/1/reactions"
    wrong = reference.problems(
        "POST", reaction, [], {}, b'{"content": "eyez"}', 201, b"{}", {"200", "201", "422"}
    )
    assert wrong[0].startswith("request: InvalidRequestBody") and "'eyez' is not one of" in wrong[0]
