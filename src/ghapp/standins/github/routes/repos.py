"""A repository's own endpoints, with an installation token of its installation: the
repository itself, a collaborator's permission, the contents API (files and directory
listings per ref) and commit statuses (kept in ``GitHubStandIn.statuses``).
"""

from __future__ import annotations

from typing import Any

from ghapp.standins.github._utils import (
    ROLES,
    Call,
    GitHubError,
    Reply,
    iso,
    not_found,
    now,
    validation,
)
from ghapp.standins.github.render import Renderer
from ghapp.standins.github.world import World


class RepoRoutes:
    world: World
    render: Renderer
    statuses: list[dict[str, Any]]

    def _get_repo(self, call: Call) -> Reply:
        assert call.repo is not None
        return Reply(200, self.render.repo(call.repo))

    def _permission(self, call: Call) -> Reply:
        """A collaborator's permission; 404 for logins never given a role."""
        assert call.repo is not None
        login = call.params["username"]
        role = self.world.role(call.repo, login)
        if role is None:
            raise not_found()
        user = {**self.render.user(login), "role_name": role}
        return Reply(200, {"permission": ROLES[role], "role_name": role, "user": user})

    def _contents(self, call: Call) -> Reply:
        """A file (base64, wrapped at 60 columns like GitHub) or a directory listing."""
        assert call.repo is not None
        key = call.repo["full_name"].lower()
        ref = call.query.get("ref") or call.repo["default_branch"]
        known_refs = {r for (k, r) in self.world.files if k == key} | {call.repo["default_branch"]}
        if ref not in known_refs:
            raise GitHubError(404, f"No commit found for the ref {ref}")
        files = self.world.files.get((key, ref), {})
        path = call.params.get("path", "").strip("/")
        if path in files:
            return Reply(200, self.render.file(call.repo, ref, path, files[path]))
        entries = self._listing(call.repo, ref, path, files)
        if not entries:
            raise not_found()
        return Reply(200, [entries[name] for name in sorted(entries)])

    def _listing(
        self, repo: dict[str, Any], ref: str, path: str, files: dict[str, str]
    ) -> dict[str, dict[str, Any]]:
        """The entries directly below ``path``: name -> file or directory entry."""
        prefix = f"{path}/" if path else ""
        entries: dict[str, dict[str, Any]] = {}
        for name, text in files.items():
            if not name.startswith(prefix):
                continue
            child, _, rest = name[len(prefix) :].partition("/")
            child_path = prefix + child
            if rest:
                entries.setdefault(child, self.render.entry(repo, ref, child_path, None))
            else:
                entries[child] = self.render.entry(repo, ref, child_path, text)
        return entries

    def _create_status(self, call: Call) -> Reply:
        assert call.repo is not None
        data = call.body()
        state = data.get("state")
        if state not in ("error", "failure", "pending", "success"):
            raise validation("Status", "state", "invalid")
        moment = iso(now())
        creator = self.render.bot()
        status_id = self.world.next_id()
        status = {
            "id": status_id,
            "node_id": f"SC_{status_id}",
            "avatar_url": creator["avatar_url"],
            "state": state,
            "description": data.get("description"),
            "target_url": data.get("target_url"),
            "context": data.get("context", "default"),
            "created_at": moment,
            "updated_at": moment,
            "creator": creator,
            "url": f"{call.api}/repos/{call.repo['full_name']}/statuses/{call.params['sha']}",
            "repository": call.repo["full_name"],
            "sha": call.params["sha"],
        }
        self.statuses.append(status)
        return Reply(201, status)
