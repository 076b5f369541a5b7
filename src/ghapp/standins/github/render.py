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
from urllib.parse import quote, urlencode

from ghapp.standins.github._utils import (
    APP_EVENTS,
    REACTION_CONTENTS,
    TOKEN_PERMISSIONS,
    Call,
    blob_sha,
    fake_sha,
    iso,
    now,
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
        """A user, organization or bot as GitHub's ``simple-user`` (a bot's login, with
        ``[bot]``, is percent-encoded in its addresses, as GitHub writes it)."""
        user_id = self.world.user_ids.setdefault(login.lower(), self.world.next_id())
        url = f"{self.api}/users/{quote(login)}"
        html = (
            f"{self.web_url}/apps/{login.removesuffix('[bot]')}"
            if kind == "Bot"
            else f"{self.web_url}/{quote(login)}"
        )
        return {
            "login": login,
            "id": user_id,
            "node_id": f"U_{user_id}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{user_id}?v=4",
            "gravatar_id": "",
            "url": url,
            "html_url": html,
            "followers_url": f"{url}/followers",
            "following_url": f"{url}/following{{/other_user}}",
            "gists_url": f"{url}/gists{{/gist_id}}",
            "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{url}/subscriptions",
            "organizations_url": f"{url}/orgs",
            "repos_url": f"{url}/repos",
            "events_url": f"{url}/events{{/privacy}}",
            "received_events_url": f"{url}/received_events",
            "type": kind,
            "site_admin": False,
        }

    def bot_login(self) -> str:
        return f"{self.app_slug}[bot]"

    def bot(self) -> dict[str, Any]:
        return self.user(self.bot_login(), "Bot")

    def installation(self, record: dict[str, Any]) -> dict[str, Any]:
        iid = record["id"]
        account = self.user(record["account_login"], record["account_type"])
        return {
            "id": iid,
            "app_id": self.app_id,
            "app_slug": self.app_slug,
            "account": account,
            "target_id": account["id"],
            "target_type": record["account_type"],
            "single_file_name": None,
            "repository_selection": "all",
            "access_tokens_url": f"{self.api}/app/installations/{iid}/access_tokens",
            "repositories_url": f"{self.api}/installation/repositories",
            "html_url": f"{self.web_url}/settings/installations/{iid}",
            "permissions": dict(TOKEN_PERMISSIONS),
            "events": APP_EVENTS,
            "created_at": iso(record["created_at"]),
            "updated_at": iso(record["created_at"]),
            "suspended_by": self.user("ghapp-owner") if record.get("suspended_at") else None,
            "suspended_at": iso(record["suspended_at"]) if record.get("suspended_at") else None,
        }

    def repo(self, repo: dict[str, Any]) -> dict[str, Any]:
        """A repository as GitHub's ``full-repository`` (which is a ``repository`` too)."""
        return self._repo(
            repo["id"],
            repo["full_name"],
            self.user(repo["owner"], self.world.owner_type(repo["owner"])),
            private=repo["private"],
            fork=False,
            default_branch=repo["default_branch"],
        )

    def head_repo(self, full_name: str) -> dict[str, Any]:
        repo = self.world.repos.get(full_name.lower())
        if repo is not None:
            return self.repo(repo)
        owner = full_name.partition("/")[0]
        return self._repo(  # a fork the stand-in knows nothing else about
            stable_id(full_name),
            full_name,
            self.user(owner),
            private=False,
            fork=True,
            default_branch="main",
        )

    def _repo(
        self,
        repo_id: int,
        full: str,
        owner: dict[str, Any],
        *,
        private: bool,
        fork: bool,
        default_branch: str,
    ) -> dict[str, Any]:
        url = f"{self.api}/repos/{full}"
        html = f"{self.web_url}/{full}"
        host = self.web_url.partition("://")[2]
        created = "2024-01-01T00:00:00Z"
        urls = {
            name: f"{url}/{tail}"
            for name, tail in {
                "archive_url": "{archive_format}{/ref}",
                "assignees_url": "assignees{/user}",
                "blobs_url": "git/blobs{/sha}",
                "branches_url": "branches{/branch}",
                "collaborators_url": "collaborators{/collaborator}",
                "comments_url": "comments{/number}",
                "commits_url": "commits{/sha}",
                "compare_url": "compare/{base}...{head}",
                "contents_url": "contents/{+path}",
                "contributors_url": "contributors",
                "deployments_url": "deployments",
                "downloads_url": "downloads",
                "events_url": "events",
                "forks_url": "forks",
                "git_commits_url": "git/commits{/sha}",
                "git_refs_url": "git/refs{/sha}",
                "git_tags_url": "git/tags{/sha}",
                "hooks_url": "hooks",
                "issue_comment_url": "issues/comments{/number}",
                "issue_events_url": "issues/events{/number}",
                "issues_url": "issues{/number}",
                "keys_url": "keys{/key_id}",
                "labels_url": "labels{/name}",
                "languages_url": "languages",
                "merges_url": "merges",
                "milestones_url": "milestones{/number}",
                "notifications_url": "notifications{?since,all,participating}",
                "pulls_url": "pulls{/number}",
                "releases_url": "releases{/id}",
                "stargazers_url": "stargazers",
                "statuses_url": "statuses/{sha}",
                "subscribers_url": "subscribers",
                "subscription_url": "subscription",
                "tags_url": "tags",
                "teams_url": "teams",
                "trees_url": "git/trees{/sha}",
            }.items()
        }
        return {
            "id": repo_id,
            "node_id": f"R_{repo_id}",
            "name": full.partition("/")[2],
            "full_name": full,
            "private": private,
            "visibility": "private" if private else "public",
            "owner": owner,
            "html_url": html,
            "description": None,
            "fork": fork,
            "url": url,
            **urls,
            "clone_url": f"{html}.git",
            "git_url": f"git://{host}/{full}.git",
            "ssh_url": f"git@{host}:{full}.git",
            "svn_url": html,
            "mirror_url": None,
            "homepage": None,
            "language": None,
            "default_branch": default_branch,
            "forks": 0,
            "forks_count": 0,
            "stargazers_count": 0,
            "watchers": 0,
            "watchers_count": 0,
            "subscribers_count": 0,
            "network_count": 0,
            "size": 0,
            "open_issues": 0,
            "open_issues_count": 0,
            "has_issues": True,
            "has_projects": True,
            "has_wiki": True,
            "has_pages": False,
            "has_downloads": True,
            "has_discussions": False,
            "archived": False,
            "disabled": False,
            "license": None,
            "topics": [],
            "pushed_at": created,
            "created_at": created,
            "updated_at": created,
        }

    def label(self, full: str, name: str) -> dict[str, Any]:
        return {
            "id": stable_id(name),
            "node_id": f"LA_{stable_id(name)}",
            "url": f"{self.api}/repos/{full}/labels/{quote(name)}",
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
            "labels_url": f"{self.api}/repos/{full}/issues/{n}/labels{{/name}}",
            "comments_url": f"{self.api}/repos/{full}/issues/{n}/comments",
            "events_url": f"{self.api}/repos/{full}/issues/{n}/events",
            "html_url": f"{self.web_url}/{full}/{kind}/{n}",
            "title": issue["title"],
            "body": issue["body"],
            "state": issue["state"],
            "state_reason": issue["state_reason"],
            "user": self.user(issue["user"], issue["user_type"]),
            "labels": [self.label(full, name) for name in issue["labels"]],
            "assignee": self.user(issue["assignees"][0]) if issue["assignees"] else None,
            "assignees": [self.user(a) for a in issue["assignees"]],
            "milestone": None,
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
        url = f"{self.api}/repos/{full}/pulls/{n}"
        html = f"{self.web_url}/{full}/pull/{n}"
        statuses = f"{self.api}/repos/{full}/statuses/{pull['head_sha']}"
        review_comment = f"{self.api}/repos/{full}/pulls/comments{{/number}}"
        return {
            "id": pull["id"],
            "node_id": f"PR_{pull['id']}",
            "number": n,
            "url": url,
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": plain["url"],
            "comments_url": plain["comments_url"],
            "commits_url": f"{url}/commits",
            "review_comments_url": f"{url}/comments",
            "review_comment_url": review_comment,
            "statuses_url": statuses,
            "_links": {
                name: {"href": href}
                for name, href in {
                    "self": url,
                    "html": html,
                    "issue": plain["url"],
                    "comments": plain["comments_url"],
                    "review_comments": f"{url}/comments",
                    "review_comment": review_comment,
                    "commits": f"{url}/commits",
                    "statuses": statuses,
                }.items()
            },
            "state": issue["state"],
            "title": issue["title"],
            "body": issue["body"],
            "user": plain["user"],
            "labels": plain["labels"],
            "assignee": plain["assignee"],
            "assignees": plain["assignees"],
            "milestone": None,
            "requested_reviewers": [],
            "requested_teams": [],
            "locked": False,
            "auto_merge": None,
            "maintainer_can_modify": False,
            "merged_by": None,
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
            "reactions": self._reactions_summary(
                f"{self.api}/repos/{full}/issues/comments/{cid}/reactions",
                self.world.reactions.get(("comment", cid), []),
            ),
            "author_association": self.world.association(comment["repo"], comment["user"]),
            "created_at": iso(comment["created_at"]),
            "updated_at": iso(comment["updated_at"]),
        }

    def review_comment(self, comment: dict[str, Any]) -> dict[str, Any]:
        """A comment in a pull request's diff, as ``pull-request-review-comment``."""
        repo = self.world.repos[comment["repo"]]
        full, n, cid = repo["full_name"], comment["number"], comment["id"]
        url = f"{self.api}/repos/{full}/pulls/comments/{cid}"
        html = f"{self.web_url}/{full}/pull/{n}#discussion_r{cid}"
        pull_url = f"{self.api}/repos/{full}/pulls/{n}"
        commit = comment.get("commit_id") or fake_sha(str(cid))
        created = comment.get("created_at") or now()
        rendered = {
            "url": url,
            "pull_request_review_id": comment.get("review_id"),
            "id": cid,
            "node_id": f"PRRC_{cid}",
            "diff_hunk": "@@ -1 +1 @@",
            "path": comment.get("path") or "README.md",
            "position": 1,
            "original_position": 1,
            "commit_id": commit,
            "original_commit_id": commit,
            "user": self.user(comment["user"], comment.get("user_type", "User")),
            "body": comment["body"],
            "created_at": iso(created),
            "updated_at": iso(comment.get("updated_at") or created),
            "html_url": html,
            "pull_request_url": pull_url,
            "author_association": self.world.association(comment["repo"], comment["user"]),
            "_links": {
                "self": {"href": url},
                "html": {"href": html},
                "pull_request": {"href": pull_url},
            },
            "line": 1,
            "original_line": 1,
            "side": "RIGHT",
            "subject_type": "line",
            "reactions": self._reactions_summary(
                f"{url}/reactions", self.world.reactions.get(("review_comment", cid), [])
            ),
        }
        if comment.get("in_reply_to_id") is not None:
            rendered["in_reply_to_id"] = comment["in_reply_to_id"]
        return rendered

    def _reactions_summary(self, url: str, reactions: list[dict[str, Any]]) -> dict[str, Any]:
        """The ``reactions`` rollup GitHub puts on comments: a count per content."""
        counts = {content: 0 for content in REACTION_CONTENTS}
        for reaction in reactions:
            counts[reaction["content"]] += 1
        return {"url": url, "total_count": len(reactions), **counts}

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
        git = f"{self.api}/repos/{full}/git/{'trees' if text is None else 'blobs'}/{sha}"
        return {
            "type": kind,
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "size": 0 if text is None else len(text.encode()),
            "url": url,
            "html_url": html,
            "git_url": git,
            "download_url": None
            if text is None
            else f"https://raw.githubusercontent.com/{full}/{ref}/{path}",
            "_links": {"self": url, "git": git, "html": html},
        }

    # -- the app's webhook deliveries --------------------------------------------------

    @staticmethod
    def hook_delivery_item(record: dict[str, Any]) -> dict[str, Any]:
        """A delivery as ``GET /app/hook/deliveries`` lists it (``hook-delivery-item``)."""
        return {
            "id": record["id"],
            "guid": record["guid"],
            "delivered_at": iso(record["delivered_at"]),
            "redelivery": record["redelivery"],
            "duration": record["duration"],
            "status": record["status"],
            "status_code": record["status_code"],
            "event": record["event"],
            "action": record["action"],
            "installation_id": record["installation_id"],
            "repository_id": record["repository_id"],
            "throttled_at": None,
        }

    def hook_delivery(self, record: dict[str, Any]) -> dict[str, Any]:
        """One delivery with its request and response (``hook-delivery``)."""
        return {
            **self.hook_delivery_item(record),
            "url": record["url"] or "",
            "request": {
                "headers": record["request_headers"],
                "payload": record["payload"],
            },
            "response": {
                "headers": record["response_headers"],
                "payload": record["response_body"],
            },
        }
