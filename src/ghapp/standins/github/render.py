"""How the GitHub stand-in renders its records as GitHub's JSON: users and the app's bot,
installations, repositories, labels, issues, pull requests, comments, reactions, contents
entries, and a list answer's page with its ``Link`` header. :class:`Renderer` reads the
:class:`~.world.World` and never changes it, except that a login seen for the first time
gets a user id. URLs start from :attr:`Renderer.api`, the origin of the request being
answered.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from ghapp.standins.github._utils import (
    APP_EVENTS,
    TOKEN_PERMISSIONS,
    Call,
    blob_sha,
    fake_sha,
    iso,
    page_params,
    stable_id,
)
from ghapp.standins.github.world import World


def head_label(issue: dict[str, Any]) -> str:
    """A pull request's ``owner:branch``."""
    return f"{issue['pull']['head_repo'].partition('/')[0]}:{issue['pull']['head_ref']}"


class Renderer:
    """GitHub's JSON for the records of one :class:`World`."""

    def __init__(
        self, world: World, *, app_id: int, app_slug: str, web_url: str, path_prefix: str
    ) -> None:
        self.world = world
        self.app_id = app_id
        self.app_slug = app_slug
        self.web_url = web_url
        self.path_prefix = path_prefix
        self.api = "http://127.0.0.1"  # the API's origin, set by each request

    def page(
        self,
        call: Call,
        items: list[Any],
        render: Callable[[Any], Any] | None = None,
    ) -> tuple[list[Any], dict[str, str]]:
        """One page of ``items`` and GitHub's ``Link`` header (prev, next, last, first)."""
        per_page, page = page_params(call)
        last = max(1, math.ceil(len(items) / per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        if render is not None:
            chunk = [render(i) for i in chunk]

        def url(number: int) -> str:
            params = [(k, v) for k, v in call.query_items if k != "page"] + [("page", str(number))]
            origin = self.api.removesuffix(self.path_prefix) if self.path_prefix else self.api
            return f"<{origin}{call.path}?{urlencode(params)}>"

        links = []
        if page > 1:
            links.append(f'{url(page - 1)}; rel="prev"')
        if page < last:
            links += [f'{url(page + 1)}; rel="next"', f'{url(last)}; rel="last"']
        if page > 1:
            links.append(f'{url(1)}; rel="first"')
        return chunk, ({"link": ", ".join(links)} if links else {})

    def user(self, login: str, kind: str = "User") -> dict[str, Any]:
        user_id = self.world.user_ids.setdefault(login.lower(), self.world.next_id())
        return {
            "login": login,
            "id": user_id,
            "node_id": f"U_{user_id}",
            "type": kind,
            "site_admin": False,
            "url": f"{self.api}/users/{login}",
            "html_url": f"{self.web_url}/{login}",
        }

    def bot_login(self) -> str:
        return f"{self.app_slug}[bot]"

    def bot(self) -> dict[str, Any]:
        return self.user(self.bot_login(), "Bot")

    def installation(self, record: dict[str, Any]) -> dict[str, Any]:
        iid = record["id"]
        return {
            "id": iid,
            "app_id": self.app_id,
            "app_slug": self.app_slug,
            "account": self.user(record["account_login"], record["account_type"]),
            "target_type": record["account_type"],
            "repository_selection": "all",
            "access_tokens_url": f"{self.api}/app/installations/{iid}/access_tokens",
            "repositories_url": f"{self.api}/installation/repositories",
            "html_url": f"{self.web_url}/settings/installations/{iid}",
            "permissions": dict(TOKEN_PERMISSIONS),
            "events": APP_EVENTS,
            "created_at": iso(record["created_at"]),
            "updated_at": iso(record["created_at"]),
            "suspended_at": None,
        }

    def repo(self, repo: dict[str, Any]) -> dict[str, Any]:
        full = repo["full_name"]
        return {
            "id": repo["id"],
            "node_id": f"R_{repo['id']}",
            "name": repo["name"],
            "full_name": full,
            "private": repo["private"],
            "visibility": "private" if repo["private"] else "public",
            "owner": self.user(repo["owner"], self.world.owner_type(repo["owner"])),
            "html_url": f"{self.web_url}/{full}",
            "description": None,
            "fork": False,
            "url": f"{self.api}/repos/{full}",
            "clone_url": f"{self.web_url}/{full}.git",
            "default_branch": repo["default_branch"],
            "archived": False,
            "disabled": False,
        }

    def head_repo(self, full_name: str) -> dict[str, Any]:
        repo = self.world.repos.get(full_name.lower())
        if repo is not None:
            return self.repo(repo)
        owner, _, name = full_name.partition("/")
        return {  # a fork the stand-in knows nothing else about
            "id": stable_id(full_name),
            "name": name,
            "full_name": full_name,
            "fork": True,
            "private": False,
            "owner": self.user(owner),
            "html_url": f"{self.web_url}/{full_name}",
            "url": f"{self.api}/repos/{full_name}",
            "clone_url": f"{self.web_url}/{full_name}.git",
            "default_branch": "main",
        }

    def label(self, name: str) -> dict[str, Any]:
        return {
            "id": stable_id(name),
            "node_id": f"LA_{stable_id(name)}",
            "name": name,
            "color": "ededed",
            "default": False,
            "description": None,
        }

    def issue(self, issue: dict[str, Any]) -> dict[str, Any]:
        full = self.world.repos[issue["repo"]]["full_name"]
        n = issue["number"]
        kind = "pull" if issue["pull"] else "issues"
        obj: dict[str, Any] = {
            "id": issue["id"],
            "node_id": f"I_{issue['id']}",
            "number": n,
            "url": f"{self.api}/repos/{full}/issues/{n}",
            "repository_url": f"{self.api}/repos/{full}",
            "comments_url": f"{self.api}/repos/{full}/issues/{n}/comments",
            "html_url": f"{self.web_url}/{full}/{kind}/{n}",
            "title": issue["title"],
            "body": issue["body"],
            "state": issue["state"],
            "state_reason": issue["state_reason"],
            "user": self.user(issue["user"], issue["user_type"]),
            "labels": [self.label(name) for name in issue["labels"]],
            "assignee": self.user(issue["assignees"][0]) if issue["assignees"] else None,
            "assignees": [self.user(a) for a in issue["assignees"]],
            "comments": issue["comments"],
            "locked": False,
            "author_association": self.world.association(issue["repo"], issue["user"]),
            "created_at": iso(issue["created_at"]),
            "updated_at": iso(issue["updated_at"]),
            "closed_at": iso(issue["closed_at"]),
        }
        if issue["pull"]:
            obj["draft"] = issue["pull"]["draft"]
            obj["pull_request"] = {
                "url": f"{self.api}/repos/{full}/pulls/{n}",
                "html_url": f"{self.web_url}/{full}/pull/{n}",
                "diff_url": f"{self.web_url}/{full}/pull/{n}.diff",
                "patch_url": f"{self.web_url}/{full}/pull/{n}.patch",
                "merged_at": iso(issue["pull"]["merged_at"]),
            }
        return obj

    def pull(self, issue: dict[str, Any]) -> dict[str, Any]:
        repo = self.world.repos[issue["repo"]]
        pull = issue["pull"]
        full = repo["full_name"]
        n = issue["number"]
        base_obj = self.repo(repo)
        head_obj = self.head_repo(pull["head_repo"])
        files = self.world.pr_files.get((issue["repo"], n), [])
        plain = self.issue(issue)
        return {
            "id": pull["id"],
            "node_id": f"PR_{pull['id']}",
            "number": n,
            "url": f"{self.api}/repos/{full}/pulls/{n}",
            "html_url": f"{self.web_url}/{full}/pull/{n}",
            "diff_url": f"{self.web_url}/{full}/pull/{n}.diff",
            "issue_url": plain["url"],
            "comments_url": plain["comments_url"],
            "state": issue["state"],
            "title": issue["title"],
            "body": issue["body"],
            "user": plain["user"],
            "labels": plain["labels"],
            "assignee": plain["assignee"],
            "assignees": plain["assignees"],
            "requested_reviewers": [],
            "locked": False,
            "draft": pull["draft"],
            "merged": pull["merged_at"] is not None,
            "merged_at": iso(pull["merged_at"]),
            "mergeable": True,
            "rebaseable": True,
            "mergeable_state": "draft" if pull["draft"] else "clean",
            "merge_commit_sha": None,
            "author_association": plain["author_association"],
            "head": {
                "label": head_label(issue),
                "ref": pull["head_ref"],
                "sha": pull["head_sha"],
                "user": head_obj["owner"],
                "repo": head_obj,
            },
            "base": {
                "label": f"{repo['owner']}:{pull['base_ref']}",
                "ref": pull["base_ref"],
                "sha": fake_sha(full, pull["base_ref"]),
                "user": base_obj["owner"],
                "repo": base_obj,
            },
            "comments": issue["comments"],
            "review_comments": 0,
            "commits": 1,
            "additions": len(files),
            "deletions": len(files),
            "changed_files": len(files),
            "created_at": plain["created_at"],
            "updated_at": plain["updated_at"],
            "closed_at": plain["closed_at"],
        }

    def comment(self, comment: dict[str, Any]) -> dict[str, Any]:
        repo = self.world.repos[comment["repo"]]
        full, n, cid = repo["full_name"], comment["number"], comment["id"]
        kind = "pull" if self.world.issues[(comment["repo"], n)]["pull"] else "issues"
        return {
            "id": cid,
            "node_id": f"IC_{cid}",
            "body": comment["body"],
            "url": f"{self.api}/repos/{full}/issues/comments/{cid}",
            "html_url": f"{self.web_url}/{full}/{kind}/{n}#issuecomment-{cid}",
            "issue_url": f"{self.api}/repos/{full}/issues/{n}",
            "user": self.user(comment["user"], comment["user_type"]),
            "author_association": self.world.association(comment["repo"], comment["user"]),
            "created_at": iso(comment["created_at"]),
            "updated_at": iso(comment["updated_at"]),
        }

    def reaction(self, reaction: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": reaction["id"],
            "node_id": f"REA_{reaction['id']}",
            "user": self.user(reaction["user"], reaction["user_type"]),
            "content": reaction["content"],
            "created_at": iso(reaction["created_at"]),
        }

    def file(self, repo: dict[str, Any], ref: str, path: str, text: str) -> dict[str, Any]:
        """A file with its content (base64, wrapped at 60 columns like GitHub)."""
        data = text.encode()
        encoded = base64.b64encode(data).decode()
        wrapped = "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))
        return {**self.entry(repo, ref, path, text), "encoding": "base64", "content": wrapped}

    def entry(self, repo: dict[str, Any], ref: str, path: str, text: str | None) -> dict[str, Any]:
        """A directory-listing entry: a file if ``text`` is given, else a directory."""
        full = repo["full_name"]
        kind = "dir" if text is None else "file"
        sha = fake_sha(full, ref, path) if text is None else blob_sha(text.encode())
        url = f"{self.api}/repos/{full}/contents/{path}?ref={ref}"
        html = f"{self.web_url}/{full}/{'tree' if text is None else 'blob'}/{ref}/{path}"
        return {
            "type": kind,
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "size": 0 if text is None else len(text.encode()),
            "url": url,
            "html_url": html,
            "git_url": f"{self.api}/repos/{full}/git/{'trees' if text is None else 'blobs'}/{sha}",
            "download_url": None
            if text is None
            else f"https://raw.githubusercontent.com/{full}/{ref}/{path}",
            "_links": {"self": url, "html": html},
        }
