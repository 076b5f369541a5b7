"""``.github/ghapp.yml``: a repository's jobs, declared in the repository.

The file is read from the default branch when the app is installed on the repository and
on every push to the default branch that changes it (see :mod:`ghapp.config.sync`). Jobs
from the file are created, updated and removed to match it; they are marked
``source: config`` and are read-only in the API and the dashboard. A job's identity is its
``name``: renaming a job in the file replaces it with a new one.

Format (``version: 1``)::

    version: 1          # required
    jobs:               # a list; an empty list (or no jobs key) removes every config job
      - name: Triage new issues       # required, unique in the file
        events: [issues.opened]       # or objects: {event: issues.labeled, labels: [bug]}
        command: issue/triage
      - name: Nightly health check
        cron: "0 3 * * *"             # quote cron expressions that start with * (YAML alias)
        timezone: Europe/Paris
        target: codebase
        command: codebase/health-check

Keys of a job are :class:`~ghapp.jobs.spec.JobSpec`'s fields in snake_case, with shorter
names for some (either name is accepted, not both in one job):

============================  =========================================================
key (also accepted)           meaning
============================  =========================================================
``name``                      unique in the file; the job's identity
``description``               free text
``status`` / ``enabled``      ``active`` | ``paused`` | ``disabled`` / ``true`` | ``false``;
                              when absent, a paused job stays paused across syncs
``cron`` (cron_expression)    5-field cron or ``@daily``…; with ``timezone`` [UTC]
``interval_minutes``          every N minutes
``threshold``                 ``{metric, operator, value, check_cron |
                              check_interval_minutes, cooldown_minutes, filter_query,
                              stale_days}``
``events`` (event_triggers)   ``issues.opened``… as strings, or objects with ``event``,
                              ``labels``, ``author_association``, ``draft``,
                              ``base_branches``, ``paths``, ``include_bots``
``commands`` (command_triggers)  slash commands: ``/triage``, ``/review security``
``mention_trigger``           ``true``: a person's ``@<app-slug>`` in a comment runs it
``assignment_trigger``        ``true``: an issue assigned to the app's bot user runs it
                              (unassigning stops it)
``follow_ups``                ``false``: replies to its sessions do not continue them
``target`` (target_type)      ``issues`` | ``prs`` | ``codebase`` | ``custom``
``filter`` (filter_query)     ``label:bug -label:wontfix``…
``command`` (command_id)      ``issue/triage``…, or a repository command
``prompt`` (custom_prompt)    a prompt instead of a command
``max_items``                 per run [10, at most 50]
``runner``                    ``claude`` | ``builtin`` (shell jobs only through the API)
session settings              ``permission_mode``, ``allowed_tools``,
                              ``disallowed_tools``, ``max_turns``, ``model``,
                              ``append_system_prompt``, ``task_config``, ``task_type``
structured results            ``output_schema`` (a JSON Schema, over the command's),
                              ``structured_actions`` (``{labels: {allowed: [...]},
                              duplicate, assign: {allowed: [...]}, dry_run}``)
reporting                     ``report`` (comment | issue | none), ``checks`` (sessions
                              on pull requests as check runs [true]),
                              ``notify_on_success``, ``notify_on_failure``, ``notifiers``
                              (notifier_ids: ids)
policies                      ``concurrency_policy`` (skip | queue | cancel | allow),
                              ``misfire_grace_seconds``, ``timeout_seconds``,
                              ``max_retries``, ``after_only_on_success``
============================  =========================================================

The repository is the one the file is in: ``repo_id``, ``installation_id``,
``repo_selection``, ``repo_ids`` and ``after_job_id`` are refused, as are
``shell_command`` and ``runner: shell`` (whoever can push to the default branch must not
get a shell on the worker). Every problem is reported with its line: ``line 7:
jobs[1].cron: cron expression '0 25 * * *': hour 25 out of range 0-23``. YAML is read
safely (no tags beyond YAML's own), with duplicate keys refused and a size limit.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

from ghapp.jobs.spec import JobSpec

CONFIG_PATH = ".github/ghapp.yml"
VERSION = 1
MAX_BYTES = 256 * 1024
MAX_JOBS = 100
MAX_NODES = 50_000  # values after alias expansion (a "billion laughs" stops here)
MAX_DEPTH = 32

CONFIG_EXAMPLE = """\
# .github/ghapp.yml — this repository's ghapp jobs (read from the default branch)
version: 1
jobs:
  - name: Triage new issues
    events: [issues.opened]
    command: issue/triage
    max_turns: 20

  - name: Review pull requests
    events:
      - event: pull_request.opened
        draft: false
        paths: ["src/**"]
    commands: ["/review"]
    target: prs
    command: pr/review
    allowed_tools: [Read, Grep, Glob]
    checks: true                 # a check run on the PR's head (the default for PRs)

  - name: Weekly stale bug sweep
    cron: "0 9 * * 1"            # Mondays at 09:00
    timezone: Europe/Berlin
    target: issues
    filter: "label:bug -label:wontfix"
    prompt: Check whether this bug is still reproducible and say what is missing.
    max_items: 5
    notify_on_failure: true
    notifiers: [1]               # notifier ids (see the dashboard's Notifiers page)

  - name: CLAUDE.md watch
    threshold:
      metric: context_score
      operator: lt
      value: 70
      check_cron: "0 8 * * *"
    target: codebase
    command: context/analyze
    runner: builtin
    concurrency_policy: skip
    timeout_seconds: 600
    max_retries: 1
"""

# YAML key -> JobSpec field, for the keys whose YAML name is shorter.
ALIASES: dict[str, str] = {
    "cron": "cron_expression",
    "events": "event_triggers",
    "commands": "command_triggers",
    "target": "target_type",
    "filter": "filter_query",
    "command": "command_id",
    "prompt": "custom_prompt",
    "notifiers": "notifier_ids",
}
CANONICAL: dict[str, str] = {spec: key for key, spec in ALIASES.items()}
REFUSED: dict[str, str] = {
    "repo_id": "jobs in .github/ghapp.yml are for the repository the file is in",
    "installation_id": "jobs in .github/ghapp.yml are for the repository the file is in",
    "repo_selection": "jobs in .github/ghapp.yml are for the repository the file is in",
    "repo_ids": "jobs in .github/ghapp.yml are for the repository the file is in",
    "after_job_id": "job chaining by id is only available through the API",
    "shell_command": "shell jobs can only be created through the API",
}
SPEC_FIELDS = frozenset(JobSpec.model_fields)
JOB_KEYS = frozenset(
    {*(SPEC_FIELDS - set(REFUSED)), *ALIASES, "enabled"}
)  # what a job in the file may say
TOP_KEYS = ("version", "jobs")
_FIELD_WORD = re.compile(r"\b(" + "|".join(sorted(SPEC_FIELDS, key=len, reverse=True)) + r")\b")

Path = tuple[str | int, ...]
_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})


@dataclass(frozen=True)
class ConfigProblem:
    line: int | None
    where: str  # e.g. "jobs[1].cron"; empty for the file as a whole
    message: str

    def __str__(self) -> str:
        head = f"line {self.line}: " if self.line else ""
        return f"{head}{self.where}: {self.message}" if self.where else f"{head}{self.message}"


class ConfigInvalid(ValueError):
    """The file cannot be used; ``problems`` in the order of their lines."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.line or 0, p.where))
        super().__init__(str(self.problems[0]) if self.problems else "invalid configuration")


@dataclass
class ConfigJob:
    """One job of the file, before validation: JobSpec fields, and where each came from."""

    index: int
    name: str
    line: int
    data: dict[str, Any]  # JobSpec fields (no repo_id yet)
    keys: dict[str, str]  # JobSpec field -> the YAML key used for it
    status_given: bool  # the file says status/enabled (else the job's own status is kept)
    shorthand: set[Path] = field(default_factory=set)  # event triggers written as strings


@dataclass
class ParsedConfig:
    jobs: list[ConfigJob]
    lines: dict[Path, int]  # YAML path -> 1-based line


@dataclass(frozen=True)
class ValidJob:
    name: str
    spec: JobSpec
    status_given: bool


# -- reading YAML with line numbers -------------------------------------------------------


class _Builder:
    """Turns a composed YAML node tree into plain values, noting each value's line."""

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        self.lines: dict[Path, int] = {}
        self.problems: list[ConfigProblem] = []
        self.nodes = 0

    def build(self, node: yaml.Node, path: Path, depth: int = 0) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            raise ConfigInvalid(
                [
                    ConfigProblem(
                        _line(node),
                        "",
                        "the file is too large or too deeply nested "
                        "(aliases expand to too many values)",
                    )
                ]
            )
        self.lines.setdefault(path, _line(node))
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _COLLECTION_TAGS:
            raise ConfigInvalid(
                [ConfigProblem(_line(node), _where(path), f"unsupported YAML tag {node.tag}")]
            )
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigInvalid(
                [ConfigProblem(_line(node), _where(path), f"invalid YAML: {problem}")]
            ) from None

    def _mapping(self, node: yaml.MappingNode, path: Path, depth: int) -> dict[str, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self._key(key_node, path)
            if key in seen:
                raise ConfigInvalid(
                    [
                        ConfigProblem(
                            _line(key_node),
                            _where((*path, key)),
                            f"duplicate key (first on line {seen[key]})",
                        )
                    ]
                )
            seen[key] = _line(key_node)
        try:
            self.loader.flatten_mapping(node)  # ``<<: *defaults`` merges
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigInvalid([ConfigProblem(_line(node), _where(path), problem)]) from None
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node, path)
            self.lines[(*path, key)] = _line(key_node)
            result[key] = self.build(value_node, (*path, key), depth + 1)
        return result

    def _key(self, node: yaml.Node, path: Path) -> str:
        value = self.loader.construct_object(node) if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(value, str):
            raise ConfigInvalid(
                [ConfigProblem(_line(node), _where(path), "keys must be plain words")]
            )
        return value


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def load_yaml(text: str) -> tuple[Any, dict[Path, int]]:
    """The document's value and the line of every value in it (1-based)."""
    if len(text.encode()) > MAX_BYTES:
        raise ConfigInvalid([ConfigProblem(None, "", f"the file is larger than {MAX_BYTES} bytes")])
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            raise ConfigInvalid(
                [ConfigProblem(mark.line + 1 if mark else None, "", _yaml_message(exc))]
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigInvalid([ConfigProblem(None, "", f"invalid YAML: {exc}")]) from None
        if node is None:
            return None, {(): 1}
        builder = _Builder(loader)
        return builder.build(node, ()), builder.lines
    finally:
        loader.dispose()


def _yaml_message(exc: yaml.MarkedYAMLError) -> str:
    problem = exc.problem or exc.context or "cannot be read"
    if exc.problem and exc.context and exc.context.startswith("expected"):
        problem = f"{exc.context}, {exc.problem}"  # "expected a single document…, but…"
    message = f"invalid YAML: {problem}"
    if "alias" in f"{exc.context} {problem}":
        message += ' (quote values that start with * such as cron: "*/5 * * * *")'
    elif "mapping values are not allowed" in problem:
        message += " (quote values that contain ': ')"
    return message


# -- the file's structure ------------------------------------------------------------------


def parse_config(text: str) -> ParsedConfig:
    """Read the file's text: its jobs as JobSpec fields, or :class:`ConfigInvalid`."""
    document, lines = load_yaml(text)
    problems: list[ConfigProblem] = []

    def problem(path: Path, message: str) -> None:
        problems.append(ConfigProblem(_nearest(lines, path), _where(path), message))

    if document is None:
        raise ConfigInvalid([ConfigProblem(1, "", "the file is empty (it needs version: 1)")])
    if not isinstance(document, dict):
        raise ConfigInvalid([ConfigProblem(1, "", "expected keys version: and jobs:")])
    for key in document:
        if key not in TOP_KEYS:
            problem((key,), _unknown(key, TOP_KEYS))
    if "version" not in document:
        problem((), f"version: is required (version: {VERSION})")
    elif document["version"] != VERSION or isinstance(document["version"], bool):
        problem(("version",), f"unsupported version {document['version']!r} (use {VERSION})")
    raw_jobs = document.get("jobs")
    jobs: list[ConfigJob] = []
    if raw_jobs is None:
        raw_jobs = []
    if not isinstance(raw_jobs, list):
        problem(("jobs",), "must be a list of jobs (each starting with - name: ...)")
        raw_jobs = []
    elif len(raw_jobs) > MAX_JOBS:
        problem(("jobs",), f"at most {MAX_JOBS} jobs per file, got {len(raw_jobs)}")
        raw_jobs = []
    names: dict[str, int] = {}
    for index, raw in enumerate(raw_jobs):
        job = _job(index, raw, lines, problem)
        if job is None:
            continue
        if job.name in names:
            problem(
                ("jobs", index, "name"),
                f"{job.name!r} is already the name of jobs[{names[job.name]}]",
            )
            continue
        names[job.name] = index
        jobs.append(job)
    if problems:
        raise ConfigInvalid(problems)
    return ParsedConfig(jobs, lines)


def _job(index: int, raw: Any, lines: dict[Path, int], problem: Any) -> ConfigJob | None:
    path: Path = ("jobs", index)
    if not isinstance(raw, dict):
        problem(path, "each job is a mapping starting with name:")
        return None
    ok = True
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        problem(path if "name" not in raw else (*path, "name"), "name: is required (a text)")
        ok = False
    data: dict[str, Any] = {}
    keys: dict[str, str] = {}
    for key, value in raw.items():
        if key in REFUSED:
            problem((*path, key), f"not allowed here: {REFUSED[key]}")
            ok = False
            continue
        if key not in JOB_KEYS:
            problem((*path, key), _unknown(key, sorted(JOB_KEYS)))
            ok = False
            continue
        spec_field = "status" if key == "enabled" else ALIASES[key] if key in ALIASES else key
        if spec_field in keys:
            problem((*path, key), f"give either {keys[spec_field]} or {key}, not both")
            ok = False
            continue
        keys[spec_field] = key
        if key == "enabled":
            if not isinstance(value, bool):
                problem((*path, key), "must be true or false")
                ok = False
                continue
            value = "active" if value else "paused"
        data[spec_field] = value
    if data.get("runner") == "shell":
        problem((*path, keys["runner"]), "shell jobs can only be created through the API")
        ok = False
    shorthand: set[Path] = set()
    for spec_field in ("event_triggers", "command_triggers"):
        value = data.get(spec_field)
        if isinstance(value, str):  # a single trigger without a list
            data[spec_field] = value = [value]
        if spec_field == "event_triggers" and isinstance(value, list):
            data[spec_field] = [
                {"event": item} if isinstance(item, str) else item for item in value
            ]
            shorthand |= {
                (*path, keys[spec_field], i)
                for i, item in enumerate(value)
                if isinstance(item, str)
            }
    if not ok:
        return None
    assert isinstance(name, str)
    return ConfigJob(
        index=index,
        name=name.strip(),
        line=lines.get(path, 1),
        data=data,
        keys=keys,
        status_given="status" in keys,
        shorthand=shorthand,
    )


# -- validation ------------------------------------------------------------------------------


def validate_config(
    parsed: ParsedConfig, repo_id: int, context: Mapping[str, Any] | None = None
) -> list[ValidJob]:
    """Every job checked as the API checks it (``context``: JobService's commands and
    metrics); :class:`ConfigInvalid` with every problem, each with its line."""
    problems: list[ConfigProblem] = []
    valid: list[ValidJob] = []
    for job in parsed.jobs:
        try:
            spec = JobSpec.model_validate(
                {**job.data, "repo_id": repo_id}, context=dict(context or {})
            )
        except ValidationError as exc:
            problems.extend(problems_of(job, exc, parsed.lines))
            continue
        valid.append(ValidJob(job.name, spec, job.status_given))
    if problems:
        raise ConfigInvalid(problems)
    return valid


def problems_of(
    job: ConfigJob, exc: ValidationError, lines: dict[Path, int]
) -> list[ConfigProblem]:
    """pydantic's errors in the file's terms: the YAML key the author wrote, and its line."""
    found = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        message = _message(error)
        if loc:
            spec_field = str(loc[0])
            path: Path = ("jobs", job.index, job.keys.get(spec_field, spec_field), *loc[1:])
            if path[:-1] in job.shorthand and path[-1] == "event":
                path = path[:-1]  # "issues.bogus" was written as a string
            if len(loc) == 1 and spec_field != "threshold":
                message = _in_file_terms(message, job)
        else:  # a rule across fields: point at the first field it names that the job has
            message = _in_file_terms(message, job)
            named = [m.group(1) for m in _FIELD_WORD.finditer(error["msg"])]
            present = [f for f in named if f in job.keys]
            path = ("jobs", job.index, job.keys[present[0]]) if present else ("jobs", job.index)
        found.append(ConfigProblem(_nearest(lines, path), _where(path), message))
    return found


def _message(error: Any) -> str:
    kind, message = error.get("type"), str(error.get("msg", "invalid"))
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "is required"
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _in_file_terms(message: str, job: ConfigJob) -> str:
    """``command_id`` → ``command`` etc.: the names the author wrote (or would write)."""

    def name(match: re.Match[str]) -> str:
        spec_field = match.group(1)
        return job.keys.get(spec_field, CANONICAL.get(spec_field, spec_field))

    return _FIELD_WORD.sub(name, message)


def _nearest(lines: dict[Path, int], path: Path) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


def _where(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _unknown(key: Any, known: Any) -> str:
    close = difflib.get_close_matches(str(key), [str(k) for k in known], n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown key{hint}"
