"""GitHub's issue search query language, as far as the stand-in speaks it: :func:`search_filters`
turns a ``q`` such as ``repo:o/r is:pr label:bug created:>2024-01-01`` into predicates over
the stored issue records. A qualifier it does not support is a ``422`` naming it, so a test
never passes on a filter that was silently ignored. The endpoint itself (sorting, paging,
the 1000-result cap) is :mod:`.routes.search`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from ghapp.standins.github._utils import GitHubError

IssuePredicate = Callable[[dict[str, Any]], bool]

_TERM = re.compile(r'(-?)([A-Za-z_-]+):((?:"[^"]*"|[^\s"])+)|"([^"]*)"|(\S+)')
_VALUE = re.compile(r'"([^"]*)"|([^,]+)')


def invalid_query(message: str) -> GitHubError:
    return GitHubError(
        422,
        "Validation Failed",
        errors=[{"message": message, "resource": "Search", "field": "q", "code": "invalid"}],
    )


def search_filters(q: str, resolve_repo: Callable[[str], str]) -> list[IssuePredicate]:
    """Turn a search query into predicates over stored issues (all must hold).

    Qualifiers: ``repo:`` (several: any), ``user:``/``org:``, ``is:``/``type:`` issue|pr,
    ``is:``/``state:`` open|closed, ``label:a,b`` (any of; several ``label:`` all),
    ``-label:``, ``no:label``, ``author:``, ``assignee:``, ``no:assignee`` (negatable),
    ``created:``/``updated:``/``closed:`` with ``>``, ``>=``, ``<``, ``<=``, ``A..B`` or a
    day, on dates or ISO 8601 times; bare words and quoted phrases match title or body.
    ``resolve_repo`` turns a ``repo:`` value into a repository key, or refuses it.
    """
    filters: list[IssuePredicate] = []
    repos: list[str] = []
    for neg, key, raw, phrase, word in _TERM.findall(q):
        if not key:
            text = (phrase or word).lower()
            filters.append(_mentions(text))
            continue
        key = key.lower()
        if key == "repo":
            repos += [resolve_repo(v) for v in _values(raw)]
            continue
        predicate = _qualifier(key, raw)
        if neg:
            filters.append(_negated(predicate))
        else:
            filters.append(predicate)
    if repos:
        filters.append(lambda i: i["repo"] in repos)
    return filters


def _mentions(text: str) -> IssuePredicate:
    return lambda i: text in i["title"].lower() or text in i["body"].lower()


def _negated(predicate: IssuePredicate) -> IssuePredicate:
    return lambda i: not predicate(i)


def _qualifier(key: str, raw: str) -> IssuePredicate:
    """The predicate of one ``key:raw`` qualifier (``repo:`` aside)."""
    lowered = [v.lower() for v in _values(raw)]
    if key in ("user", "org"):
        return lambda i: i["repo"].split("/")[0] in lowered
    if key in ("is", "type", "state"):
        return _is_filter(lowered[0] if lowered else "", raw)
    if key == "label":
        return lambda i: any(lab.lower() in lowered for lab in i["labels"])
    if key == "author":
        return lambda i: i["user"].lower() in lowered
    if key == "assignee":
        return lambda i: any(a.lower() in lowered for a in i["assignees"])
    if key == "no" and lowered in (["assignee"], ["label"]):
        field_ = "assignees" if lowered == ["assignee"] else "labels"
        return lambda i: not i[field_]
    if key in ("created", "updated", "closed"):
        return _date_filter(f"{key}_at", raw)
    raise invalid_query(f"The GitHub stand-in does not support the qualifier {key}:{raw}")


def _values(raw: str) -> list[str]:
    return [quoted or plain for quoted, plain in _VALUE.findall(raw)]


def _is_filter(value: str, raw: str) -> IssuePredicate:
    if value in ("issue", "issues"):
        return lambda i: i["pull"] is None
    if value in ("pr", "pull-request", "pull_request"):
        return lambda i: i["pull"] is not None
    if value in ("open", "closed"):
        return lambda i: i["state"] == value
    raise invalid_query(f"The GitHub stand-in does not support is:{raw}")


def _bound(text: str) -> datetime | date:
    try:
        if "T" in text:
            moment = datetime.fromisoformat(text)
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return date.fromisoformat(text)
    except ValueError:
        raise invalid_query(f"Invalid date {text!r}") from None


def _compare(moment: datetime, bound: datetime | date) -> int:
    """-1, 0 or 1: ``moment`` against a day (compared by UTC day) or an instant."""
    left: Any = moment.astimezone(UTC).date() if type(bound) is date else moment
    return (left > bound) - (left < bound)


def _date_filter(attribute: str, spec: str) -> IssuePredicate:
    """``>D``, ``>=D``, ``<D``, ``<=D``, ``A..B`` (``*`` open), or ``D`` (that day/instant)."""
    tests: list[tuple[str, Callable[[int], bool]]] = [
        (">=", lambda c: c >= 0),
        ("<=", lambda c: c <= 0),
        (">", lambda c: c > 0),
        ("<", lambda c: c < 0),
    ]
    if ".." in spec:
        low, high = spec.split("..", 1)
        checks = []
        if low not in ("", "*"):
            checks.append(_moment_filter(attribute, _bound(low), tests[0][1]))
        if high not in ("", "*"):
            checks.append(_moment_filter(attribute, _bound(high), tests[1][1]))
        return lambda i: all(check(i) for check in checks) and i[attribute] is not None
    for op, test in tests:
        if spec.startswith(op):
            return _moment_filter(attribute, _bound(spec[len(op) :]), test)
    return _moment_filter(attribute, _bound(spec), lambda c: c == 0)


def _moment_filter(
    attribute: str, bound: datetime | date, test: Callable[[int], bool]
) -> IssuePredicate:
    def predicate(issue: dict[str, Any]) -> bool:
        moment = issue[attribute]
        return moment is not None and test(_compare(moment, bound))

    return predicate
