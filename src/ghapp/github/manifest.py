"""What ghapp asks GitHub for when it is registered: webhook events and permissions.

``app.yml`` at the repository root (the GitHub App manifest) lists exactly these, and
``tests/test_deployment.py`` checks both against the code: the events against what the
webhook handlers route and what jobs may trigger on, the permissions against the GitHub
API calls the worker makes. ``ghapp setup`` posts this manifest (or ``./app.yml``) to
GitHub with the URLs filled in.

``installation`` and ``installation_repositories`` are not listed: GitHub sends them to
every app without a subscription (``webhooks/installations.py`` handles them). ``push`` is
for config as code only (``config/webhooks.py``: pushes that change ``.github/ghapp.yml``);
jobs cannot trigger on it.
"""

from __future__ import annotations

from typing import Any

NAME = "ghapp"
DESCRIPTION = (
    "Self-hosted automation: runs Claude Code sessions and other jobs on issues and pull "
    "requests when GitHub events happen and on schedules, and reports back in comments."
)
WEBHOOK_PATH = "/webhooks/github"

# default_events: every event a job can trigger on (jobs/spec.py KNOWN_EVENTS), each routed
# to webhooks/triggers.py (ITEM_EVENTS), which queues the runs.
EVENTS: tuple[str, ...] = (
    "issues",  # event triggers on issues: opened, labeled, closed...
    "issue_comment",  # slash commands (/triage) and comment event triggers
    "pull_request",  # event triggers on PRs: opened, synchronize, ready_for_review...
    "pull_request_review",  # event triggers on reviews: submitted, edited, dismissed
    "pull_request_review_comment",  # slash commands and triggers in review comments
    "push",  # config/webhooks.py: a push changing .github/ghapp.yml queues a config sync
    "check_run",  # webhooks/checks.py: Re-run on one of ghapp's check runs queues it again
    "check_suite",  # webhooks/checks.py: Re-run all checks queues each job's latest again
)

# default_permissions: what the worker's GitHub API calls and clones need (GitHub's
# "permissions required for GitHub Apps"), and what the events above require.
PERMISSIONS: dict[str, str] = {
    # worker/report.py: tracking comments (POST/PATCH issues/{n}/comments, issues/comments/
    # {id}), report issues (POST issues, PATCH issues/{n}); worker/authorize.py: reactions
    # and refusals on command comments; worker/items.py: GET /search/issues; the issues
    # and issue_comment events.
    "issues": "write",
    # the same comment, reaction and search calls on pull requests (GitHub checks
    # pull_requests for a PR's conversation), and the pull_request* events.
    "pull_requests": "write",
    # worker/checkout.py: git clone of the default branch or fetch of refs/pull/N/head;
    # repo_commands.py and config/sync.py: GET /repos/{repo}/contents/...; worker/publish.py:
    # git push of ghapp/<job>/<item> branches with a session's changes.
    "contents": "write",
    # worker/authorize.py: GET /repos/{repo}/collaborators/{login}/permission (documented as
    # needing metadata: read); GitHub grants it to every app with repository permissions.
    "metadata": "read",
    # config/sync.py: POST /repos/{repo}/statuses/{sha} (the ghapp/config status).
    "statuses": "write",
    # worker/checks.py: POST and PATCH /repos/{repo}/check-runs[/{id}] (a pull request's
    # sessions as check runs), GET /repos/{repo}/commits/{sha}/check-runs; and the
    # check_run and check_suite events.
    "checks": "write",
}


def build_manifest(
    base: dict[str, Any] | None, *, public_url: str, redirect_url: str
) -> dict[str, Any]:
    """The manifest to post: ``base`` (``app.yml``; None: the lists above) with the URLs
    of this deployment filled in."""
    manifest: dict[str, Any] = dict(base) if base is not None else default_manifest()
    public_url = public_url.rstrip("/")
    manifest["url"] = public_url
    manifest["hook_attributes"] = {
        **(manifest.get("hook_attributes") or {}),
        "url": public_url + WEBHOOK_PATH,
        "active": True,
    }
    manifest["redirect_url"] = redirect_url
    return manifest


def default_manifest() -> dict[str, Any]:
    """``app.yml``'s content without its placeholder URLs."""
    return {
        "name": NAME,
        "description": DESCRIPTION,
        "public": False,
        "default_events": list(EVENTS),
        "default_permissions": dict(PERMISSIONS),
    }
