"""A repository's labels and an issue's labels and assignees, with an installation token:
list the repository's labels (paged), add labels to an issue or pull request (as on GitHub,
a name the repository does not have is created on the way: ghapp must not rely on that),
check whether a login may be assigned (``204`` or ``404``) and add assignees (GitHub
silently leaves out logins that may not be assigned).

Set-up and inspection helpers live here with the routes they serve: ``add_label``
(a label of the repository) and ``labels_of`` (the repository's label names).
"""

from __future__ import annotations

import threading
from typing import Any

from ghapp.standins.github._utils import Call, Reply, label_names, not_found, now, validation
from ghapp.standins.github.render import Renderer
from ghapp.standins.github.world import World

ASSIGNABLE_ROLES = frozenset({"triage", "write", "maintain", "admin"})
MAX_ASSIGNEES = 10  # GitHub keeps at most ten assignees on an issue


class LabelRoutes:
    world: World
    render: Renderer
    _lock: threading.RLock

    # == helpers for test code ===========================================================

    def add_label(self, full_name: str, name: str) -> None:
        """A label of the repository (the issues' labels are names of these)."""
        with self._lock:
            _labels(self.world.repo(full_name)).setdefault(name.lower(), name)

    def labels_of(self, full_name: str) -> list[str]:
        """The repository's label names, in the order they were made."""
        with self._lock:
            return list(_labels(self.world.repo(full_name)).values())

    # == routes ==========================================================================

    def _list_repo_labels(self, call: Call) -> Reply:
        assert call.repo is not None
        full = call.repo["full_name"]
        labels = [self.render.label(full, name) for name in _labels(call.repo).values()]
        page, headers = self.render.page(call, labels)
        return Reply(200, page, headers)

    def _add_issue_labels(self, call: Call) -> Reply:
        """``{"labels": [...]}`` (or the list itself): added to the issue's labels."""
        assert call.repo is not None
        issue = self.world.issue(call.repo, int(call.params["number"]))
        given = call.json.get("labels") if isinstance(call.json, dict) else call.json
        if not isinstance(given, list) or not given:
            raise validation("Label", "labels", "missing_field")
        known = _labels(call.repo)
        for name in label_names(given):
            spelled = known.setdefault(name.lower(), name)  # GitHub creates an unknown label
            if spelled.lower() not in {have.lower() for have in issue["labels"]}:
                issue["labels"].append(spelled)
        issue["updated_at"] = now()
        full = call.repo["full_name"]
        return Reply(200, [self.render.label(full, name) for name in issue["labels"]])

    def _check_assignee(self, call: Call) -> Reply:
        assert call.repo is not None
        if self.world.role(call.repo, call.params["assignee"]) not in ASSIGNABLE_ROLES:
            raise not_found()
        return Reply(204, None)

    def _add_issue_assignees(self, call: Call) -> Reply:
        assert call.repo is not None
        issue = self.world.issue(call.repo, int(call.params["number"]))
        given = call.body().get("assignees") or []
        for entry in given:
            login = str(entry.get("login") if isinstance(entry, dict) else entry)
            assignable = self.world.role(call.repo, login) in ASSIGNABLE_ROLES
            have = {a.lower() for a in issue["assignees"]}
            if assignable and login.lower() not in have and len(have) < MAX_ASSIGNEES:
                issue["assignees"].append(login)
        issue["updated_at"] = now()
        return Reply(201, self.render.issue(issue))


def _labels(repo: dict[str, Any]) -> dict[str, str]:
    """The repository's labels: lower-cased name → name as it was made."""
    labels: dict[str, str] = repo.setdefault("labels", {})
    return labels
