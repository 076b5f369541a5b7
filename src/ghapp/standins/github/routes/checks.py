"""Check runs (GitHub's Checks API), with an installation token of the repository's
installation: create, update and get one, list a commit's or a check suite's. A commit's
check runs by this app share one check suite, made with the first. The answers are
GitHub's ``check-run`` objects (:meth:`CheckRoutes.render_check_run`); requests are
checked as GitHub documents them (``name`` and ``head_sha`` required, the status and
conclusion enums, a conclusion for a completed run, ``output`` with its title and
summary). ``World.checks_refused`` answers as GitHub does for an installation that has
not granted ``checks: write``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ghapp.standins.github._utils import (
    NOT_ACCESSIBLE,
    Call,
    GitHubError,
    Reply,
    fake_sha,
    iso,
    not_found,
    now,
    parse_moment,
    validation,
)
from ghapp.standins.github.render import Renderer
from ghapp.standins.github.world import World

STATUSES = ("queued", "in_progress", "completed")
CONCLUSIONS = (
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "stale",
    "timed_out",
)
TEXT_LIMIT = 65_535  # output.summary and output.text


class CheckRoutes:
    world: World
    render: Renderer

    _get_app: Callable[[Call], Reply]  # routes/app.py: the app, as GET /app answers it

    # -- handlers --------------------------------------------------------------------------

    def _create_check_run(self, call: Call) -> Reply:
        assert call.repo is not None
        self._refuse_if_asked()
        data = call.body()
        for name in ("name", "head_sha"):
            if not isinstance(data.get(name), str) or not data[name]:
                raise validation("CheckRun", name, "missing_field")
        moment = now()
        record: dict[str, Any] = {
            "id": self.world.next_id(),
            "repo": call.repo["full_name"].lower(),
            "name": data["name"],
            "head_sha": data["head_sha"],
            "details_url": None,
            "external_id": None,
            "status": "queued",
            "conclusion": None,
            "started_at": moment,
            "completed_at": None,
            "output": {"title": None, "summary": None, "text": None},
            "app_id": self.render.app_id,
            "updates": 0,
        }
        record["check_suite"] = self._suite_for(record)
        self._apply(record, data, create=True)
        self.world.check_runs[record["id"]] = record
        return Reply(201, self.render_check_run(call, record))

    def _update_check_run(self, call: Call) -> Reply:
        record = self._check_run(call)
        self._refuse_if_asked()
        self._apply(record, call.body(), create=False)
        record["updates"] += 1
        return Reply(200, self.render_check_run(call, record))

    def _get_check_run(self, call: Call) -> Reply:
        return Reply(200, self.render_check_run(call, self._check_run(call)))

    def _list_check_runs_for_ref(self, call: Call) -> Reply:
        assert call.repo is not None
        ref = call.params["ref"]
        repo = call.repo["full_name"].lower()
        runs = [r for r in self.world.check_runs.values() if r["repo"] == repo]
        return self._listed(call, [r for r in runs if r["head_sha"] == ref])

    def _list_check_runs_for_suite(self, call: Call) -> Reply:
        assert call.repo is not None
        suite = int(call.params["check_suite_id"])
        repo = call.repo["full_name"].lower()
        runs = [r for r in self.world.check_runs.values() if r["repo"] == repo]
        found = [r for r in runs if r["check_suite"] == suite]
        if not found and suite not in self.world.check_suites.values():
            raise not_found()
        return self._listed(call, found)

    # -- what they share -------------------------------------------------------------------

    def _listed(self, call: Call, runs: list[dict[str, Any]]) -> Reply:
        """``check_name``, ``status``, ``app_id`` and ``filter`` (``latest``: the newest
        run of each name), newest first; paginated."""
        name, status = call.query.get("check_name"), call.query.get("status")
        app_id = call.query.get("app_id")
        if status is not None and status not in STATUSES:
            raise validation("CheckRun", "status", "invalid")
        runs = [
            r
            for r in sorted(runs, key=lambda r: r["id"], reverse=True)
            if (name is None or r["name"] == name)
            and (status is None or r["status"] == status)
            and (app_id is None or str(r["app_id"]) == app_id)
        ]
        if call.query.get("filter", "latest") == "latest":
            newest: dict[str, dict[str, Any]] = {}
            for run in runs:  # newest first: the first of each name stays
                newest.setdefault(run["name"], run)
            runs = list(newest.values())
        page, headers = self.render.page(call, runs, lambda r: self.render_check_run(call, r))
        return Reply(200, {"total_count": len(runs), "check_runs": page}, headers)

    def _check_run(self, call: Call) -> dict[str, Any]:
        assert call.repo is not None
        record = self.world.check_runs.get(int(call.params["check_run_id"]))
        if record is None or record["repo"] != call.repo["full_name"].lower():
            raise not_found()
        return record

    def _refuse_if_asked(self) -> None:
        if self.world.checks_refused:
            raise GitHubError(403, NOT_ACCESSIBLE)

    def _suite_for(self, record: dict[str, Any]) -> int:
        key = (record["repo"], record["head_sha"])
        if key not in self.world.check_suites:
            self.world.check_suites[key] = self.world.next_id()
        return self.world.check_suites[key]

    def _apply(self, record: dict[str, Any], data: dict[str, Any], *, create: bool) -> None:
        """A create's or an update's fields, checked as GitHub documents them."""
        for name in ("name", "details_url", "external_id"):
            if name in data:
                if not isinstance(data[name], str):
                    raise validation("CheckRun", name, "invalid")
                record[name] = data[name]
        status, conclusion = data.get("status"), data.get("conclusion")
        allowed = STATUSES if create else (*STATUSES, "waiting", "requested", "pending")
        if status is not None and status not in allowed:
            raise validation("CheckRun", "status", "invalid")
        if conclusion is not None and conclusion not in CONCLUSIONS:
            raise validation("CheckRun", "conclusion", "invalid")
        if (status == "completed" or "completed_at" in data) and conclusion is None:
            raise validation("CheckRun", "conclusion", "missing_field")
        for name in ("started_at", "completed_at"):
            if name in data:
                record[name] = parse_moment(data[name], now())
        if conclusion is not None:
            record["status"], record["conclusion"] = "completed", conclusion
            record["completed_at"] = record["completed_at"] or now()
        elif status is not None:
            record["status"] = status
        if "output" in data:
            record["output"] = self._output(data["output"], create=create)

    @staticmethod
    def _output(output: Any, *, create: bool) -> dict[str, Any]:
        if not isinstance(output, dict):
            raise validation("CheckRun", "output", "invalid")
        for name in ("title", "summary") if create else ("summary",):
            if not isinstance(output.get(name), str):
                raise validation("CheckRun", f"output.{name}", "missing_field")
        for name in ("title", "summary", "text"):
            value = output.get(name)
            if value is not None and (not isinstance(value, str) or len(value) > TEXT_LIMIT):
                raise validation("CheckRun", f"output.{name}", "invalid")
        return {name: output.get(name) for name in ("title", "summary", "text")}

    def render_check_run(self, call: Call, record: dict[str, Any]) -> dict[str, Any]:
        """GitHub's ``check-run`` object."""
        repo = self.world.repos[record["repo"]]
        full = repo["full_name"]
        api = f"{self.render.api}/repos/{full}/check-runs/{record['id']}"
        return {
            "id": record["id"],
            "node_id": f"CR_{record['id']}",
            "head_sha": record["head_sha"],
            "external_id": record["external_id"],
            "url": api,
            "html_url": f"{self.render.web_url}/{full}/runs/{record['id']}",
            "details_url": record["details_url"],
            "status": record["status"],
            "conclusion": record["conclusion"],
            "started_at": iso(record["started_at"]),
            "completed_at": iso(record["completed_at"]),
            "output": {
                **record["output"],
                "annotations_count": 0,
                "annotations_url": f"{api}/annotations",
            },
            "name": record["name"],
            "check_suite": {"id": record["check_suite"]},
            "app": self._get_app(call).body,
            "pull_requests": [
                self._pull_minimal(repo, issue)
                for issue in self.world.issues_of(repo)
                if issue["pull"] is not None
                and issue["state"] == "open"
                and issue["pull"]["head_sha"] == record["head_sha"]
            ],
        }

    def _pull_minimal(self, repo: dict[str, Any], issue: dict[str, Any]) -> dict[str, Any]:
        """GitHub's ``pull-request-minimal``, as check runs and suites list their PRs."""
        full, pull = repo["full_name"], issue["pull"]
        base_repo = {
            "id": repo["id"],
            "url": f"{self.render.api}/repos/{full}",
            "name": repo["name"],
        }
        return {
            "id": pull["id"],
            "number": issue["number"],
            "url": f"{self.render.api}/repos/{full}/pulls/{issue['number']}",
            "head": {"ref": pull["head_ref"], "sha": pull["head_sha"], "repo": base_repo},
            "base": {
                "ref": pull["base_ref"],
                "sha": fake_sha(full, pull["base_ref"]),
                "repo": base_repo,
            },
        }
