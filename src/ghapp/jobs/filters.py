"""A job's item filter: a small GitHub-like query, parsed, translated and evaluated.

Grammar (whitespace-separated tokens; a value may be double-quoted to hold spaces)::

    state:open | state:closed | state:all      at most once; default open
    label:bug    label:bug,enhancement         comma = OR; repeated label: terms = AND
    label:"help wanted"                        quoted values (no commas, no quotes inside)
    -label:wontfix                             '-' negates label, author and assignee only
    author:USERNAME                            at most one positive author
    assignee:USERNAME | assignee:none
    created:>2024-01-01  created:<=2024-01-01  created:2024-01-01  (on that day)
    created:2024-01-01..2024-02-01             inclusive range; both ends required
    created:>2024-01-01T10:00:00Z              times need Z or a +HH:MM offset
    updated:<7d  updated:>=2w  updated:>12h    ages: 1-9999 hours, days or weeks

Qualifier names and the keywords ``open``/``closed``/``all``/``none`` are
case-insensitive. A username is a GitHub login: letters, digits and single inner
hyphens, at most 39 characters, optionally followed by ``[bot]``. A label is at most
50 characters with no line breaks, control characters, commas or double quotes, and
no surrounding whitespace. Dates must lie in the years 1970-2999. Anything else
(unknown qualifiers, bare words, empty values, bad dates, ages without ``<``/``>``)
raises :class:`FilterError` naming the first offending token.

An age compares how long ago something happened: ``updated:<7d`` reads "updated
less than 7 days ago", i.e. *after* ``now - 7d``; ``updated:>30d`` reads "more than
30 days ago", i.e. *before* ``now - 30d``. The reference point is ``now`` truncated to
whole seconds, in both :func:`to_search_query` and :func:`matches`, so they agree.

Translation to a GitHub search query (``q`` of ``GET /search/issues``), which always
starts with ``repo:OWNER/NAME`` and ``is:issue`` or ``is:pr``:

======================  =================================================
filter                  search query
======================  =================================================
(no state:)             ``is:open``
``state:open``          ``is:open``
``state:closed``        ``is:closed``
``state:all``           (nothing)
``label:a,"b c"``       ``label:a,"b c"`` (comma is OR on GitHub too)
``-label:a,b``          ``-label:a -label:b`` (neither a nor b)
``author:octocat``      ``author:octocat``
``author:bot[bot]``     ``author:app/bot`` (GitHub's spelling for apps)
``-author:octocat``     ``-author:octocat``
``assignee:octocat``    ``assignee:octocat`` (negated: ``-assignee:octocat``)
``assignee:none``       ``no:assignee``
``-assignee:none``      ``-no:assignee``
``created:>2024-01-01`` unchanged (absolute dates, times and ranges)
``updated:<7d``         ``updated:>T`` with T = now - 7 days
``updated:<=7d``        ``updated:>=T``
``updated:>30d``        ``updated:<T`` with T = now - 30 days
``updated:>=30d``       ``updated:<=T``
======================  =================================================

T is always a full UTC timestamp (``2025-06-08T12:00:00Z``), whatever the unit, so
the search is exactly as wide as :func:`matches`; a date-only T would drop items.

:func:`matches` evaluates a query against an issue or PR JSON object (as the REST API
and webhooks return them) to double-check search results. Labels and logins compare
case-insensitively. A date-only bound covers its whole UTC day: ``>2024-01-01`` means
from 2024-01-02T00:00Z on, ``<=2024-01-01`` up to the end of 2024-01-01, and a range
includes both end days.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

__all__ = [
    "QUALIFIERS",
    "FilterError",
    "FilterQuery",
    "Term",
    "matches",
    "parse_filter",
    "to_search_query",
]

QUALIFIERS = ("assignee", "author", "created", "label", "state", "updated")
NEGATABLE = frozenset({"label", "author", "assignee"})
DATE_QUALIFIERS = frozenset({"created", "updated"})
STATES = ("open", "closed", "all")
COMPARISONS = (">=", "<=", ">", "<")  # longest first: '>=' before '>'
MAX_LABEL_LENGTH = 50
MAX_LOGIN_LENGTH = 39
MIN_YEAR, MAX_YEAR = 1970, 2999

_LOGIN = re.compile(r"(?P<login>[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*)(?P<bot>\[bot\])?")
_REPO = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*/[A-Za-z0-9._-]{1,100}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:Z|[+-][0-9]{2}:[0-9]{2})"
)
_AGE = re.compile(r"(?P<n>[1-9][0-9]{0,3})(?P<unit>[hdw])")
_AGE_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_FORBIDDEN_LABEL_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_POINT_HELP = "expected a date like 2024-01-01, a time like 2024-01-01T10:00:00Z or an age like 7d"


class FilterError(ValueError):
    """A filter token that does not parse; ``token`` is the offending token verbatim."""

    def __init__(self, token: str, reason: str) -> None:
        self.token = token
        self.reason = reason
        super().__init__(f"filter token '{token}': {reason}")

    def __reduce__(self) -> tuple[type[FilterError], tuple[str, str]]:
        return (type(self), (self.token, self.reason))


@dataclass(frozen=True)
class Term:
    """One parsed token.

    ``values`` holds the alternatives (labels), the single username/keyword/state, or
    for ``created``/``updated`` the date, time or age text: one value, or two for a
    range. ``op`` is one of ``>``, ``<``, ``>=``, ``<=``, ``..`` (range) or None (on
    that day/at that time) for dates, and None for everything else.
    """

    qualifier: str
    values: tuple[str, ...]
    negated: bool = False
    op: str | None = None

    @property
    def is_age(self) -> bool:
        """A relative date such as ``updated:<7d``."""
        return self.qualifier in DATE_QUALIFIERS and _AGE.fullmatch(self.values[0]) is not None

    def __str__(self) -> str:
        prefix = "-" if self.negated else ""
        if self.qualifier in DATE_QUALIFIERS:
            if self.op == "..":
                value = f"{self.values[0]}..{self.values[1]}"
            else:
                value = f"{self.op or ''}{self.values[0]}"
        else:
            value = ",".join(_quote(v) for v in self.values)
        return f"{prefix}{self.qualifier}:{value}"


@dataclass(frozen=True)
class FilterQuery:
    """All terms of a filter, ANDed, in the order written."""

    terms: tuple[Term, ...] = ()

    @property
    def state(self) -> str:
        """``open``, ``closed`` or ``all``; ``open`` when no ``state:`` term is given."""
        for term in self.terms:
            if term.qualifier == "state":
                return term.values[0]
        return "open"

    def __str__(self) -> str:
        """The canonical form: ``parse_filter(str(q)) == q``."""
        return " ".join(str(term) for term in self.terms)


# ---------------------------------------------------------------------------- parsing


def parse_filter(text: str | None) -> FilterQuery:
    """Parse a filter; None or blank text is the empty query (open items)."""
    if not text:
        return FilterQuery()
    terms: list[Term] = []
    seen_state = seen_author = False
    for token in _tokens(text):
        term = _parse_token(token)
        if term.qualifier == "state":
            if seen_state:
                raise FilterError(token, "state is given more than once")
            seen_state = True
        elif term.qualifier == "author" and not term.negated:
            if seen_author:
                raise FilterError(token, "author is given more than once (an item has one)")
            seen_author = True
        terms.append(term)
    return FilterQuery(tuple(terms))


def _tokens(text: str) -> Iterator[str]:
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start, in_quote = i, False
        while i < n and (in_quote or not text[i].isspace()):
            if text[i] == '"':
                in_quote = not in_quote
            i += 1
        token = text[start:i]
        if in_quote:
            raise FilterError(token, "unterminated quote")
        yield token


def _parse_token(token: str) -> Term:
    prefix, colon, raw = token.partition(":")
    if not colon or '"' in prefix:
        raise FilterError(token, "bare words are not supported; use a qualifier such as label:bug")
    negated = prefix.startswith("-")
    name = prefix[1:] if negated else prefix
    qualifier = name.lower()
    if not name:
        raise FilterError(token, "missing qualifier before ':'")
    if qualifier not in QUALIFIERS:
        raise FilterError(
            token, f"unknown qualifier '{name}' (expected one of: {', '.join(QUALIFIERS)})"
        )
    if negated and qualifier not in NEGATABLE:
        raise FilterError(
            token, f"{qualifier} can't be negated (only {', '.join(sorted(NEGATABLE))} can)"
        )
    values = _split_values(token, raw)
    if qualifier == "label":
        for value in values:
            _check_label(token, value)
        return Term("label", values, negated)
    if len(values) > 1:
        raise FilterError(token, f"{qualifier} takes a single value (only label: takes a list)")
    value = values[0]
    if qualifier == "state":
        if value.lower() not in STATES:
            raise FilterError(token, f"state must be one of: {', '.join(STATES)}")
        return Term("state", (value.lower(),))
    if qualifier in ("author", "assignee"):
        if qualifier == "assignee" and value.lower() == "none":
            return Term("assignee", ("none",), negated)
        _check_login(token, value)
        return Term(qualifier, (value,), negated)
    return _parse_date_term(token, qualifier, value)


def _split_values(token: str, raw: str) -> tuple[str, ...]:
    """Split on commas outside quotes; each item is wholly quoted or has no quotes."""
    items: list[str] = []
    current: list[str] = []
    in_quote = False
    for char in raw:
        if char == '"':
            in_quote = not in_quote
        if char == "," and not in_quote:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    values = []
    for item in items:
        if len(item) >= 2 and item[0] == item[-1] == '"' and '"' not in item[1:-1]:
            item = item[1:-1]
        elif '"' in item:
            raise FilterError(token, 'quote a whole value, e.g. label:"help wanted"')
        if not item:
            raise FilterError(token, "empty value")
        if "," in item:
            raise FilterError(token, "a value can't contain a comma (commas separate values)")
        values.append(item)
    return tuple(values)


def _check_label(token: str, label: str) -> None:
    if len(label) > MAX_LABEL_LENGTH:
        raise FilterError(token, f"a label name is at most {MAX_LABEL_LENGTH} characters")
    if label != label.strip():
        raise FilterError(token, "a label name can't start or end with whitespace")
    if any(unicodedata.category(c) in _FORBIDDEN_LABEL_CATEGORIES for c in label):
        raise FilterError(token, "a label name can't contain control characters or line breaks")


def _check_login(token: str, value: str) -> None:
    match = _LOGIN.fullmatch(value)
    if match is None or len(match["login"]) > MAX_LOGIN_LENGTH:
        raise FilterError(
            token,
            f"'{value}' is not a GitHub username (letters, digits and single inner hyphens, "
            f"at most {MAX_LOGIN_LENGTH} characters, optionally followed by [bot])",
        )


def _parse_date_term(token: str, qualifier: str, value: str) -> Term:
    for op in COMPARISONS:
        if value.startswith(op):
            rest = value[len(op) :]
            if not rest:
                raise FilterError(token, f"missing date after '{op}'")
            _parse_point(token, rest, allow_age=True)
            return Term(qualifier, (rest,), op=op)
    if ".." in value:
        low, _, high = value.partition("..")
        if not low or not high:
            raise FilterError(token, "a range needs both ends, e.g. created:2024-01-01..2024-02-01")
        _parse_point(token, low, allow_age=False)
        _parse_point(token, high, allow_age=False)
        term = Term(qualifier, (low, high), op="..")
        start, _, end, end_inclusive = _bounds(term, None)
        assert start is not None and end is not None
        if start > end or (start == end and not end_inclusive):
            raise FilterError(token, "the range starts after it ends")
        return term
    _parse_point(token, value, allow_age=False)
    return Term(qualifier, (value,))


def _parse_point(token: str, text: str, *, allow_age: bool) -> None:
    """Validate a date, a time or (when allowed) an age."""
    if _AGE.fullmatch(text):
        if not allow_age:
            raise FilterError(token, "an age needs < or >, e.g. updated:<7d")
        return
    if not (_DATE.fullmatch(text) or _DATETIME.fullmatch(text)):
        raise FilterError(token, f"'{text}' is not a date: {_POINT_HELP}")
    try:
        parsed = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        raise FilterError(token, f"'{text}' is not a valid date or time") from None
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise FilterError(token, f"dates must lie in the years {MIN_YEAR}-{MAX_YEAR}")


def _quote(value: str) -> str:
    return f'"{value}"' if any(c.isspace() for c in value) else value


# ------------------------------------------------------------------------ translation


def to_search_query(
    query: FilterQuery,
    *,
    repo: str,
    target: Literal["issues", "prs"],
    now: datetime,
) -> str:
    """The GitHub issue-search query (``q``) for the query's items in ``repo``.

    Ages become absolute UTC timestamps relative to ``now`` (aware): "less than 7 days
    ago" (``updated:<7d``) is "updated after now - 7d" (``updated:>T``) and "more than
    30 days ago" (``updated:>30d``) is "updated before now - 30d" (``updated:<T``).
    See the module docstring for the full table.
    """
    if _REPO.fullmatch(repo) is None or repo.endswith(("/.", "/..")):
        raise ValueError(f"not a repository full name: {repo!r}")
    if target not in ("issues", "prs"):
        raise ValueError(f"target must be 'issues' or 'prs', not {target!r}")
    reference = _reference_time(now)
    parts = [f"repo:{repo}", "is:issue" if target == "issues" else "is:pr"]
    if query.state != "all":
        parts.append(f"is:{query.state}")
    for term in query.terms:
        parts.extend(_search_parts(term, reference))
    return " ".join(parts)


_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


def _search_parts(term: Term, reference: datetime) -> list[str]:
    sign = "-" if term.negated else ""
    match term.qualifier:
        case "state":
            return []
        case "label":
            if term.negated:
                return [f"-label:{_quote(v)}" for v in term.values]
            return [str(term)]
        case "author":
            login = term.values[0]
            if login.endswith("[bot]"):
                login = f"app/{login.removesuffix('[bot]')}"
            return [f"{sign}author:{login}"]
        case "assignee":
            if term.values[0] == "none":
                return [f"{sign}no:assignee"]
            return [str(term)]
        case _:
            if not term.is_age:  # absolute: times in UTC, so no '+' reaches the URL
                if term.op == "..":
                    return [f"{term.qualifier}:{'..'.join(map(_utc_text, term.values))}"]
                return [f"{term.qualifier}:{term.op or ''}{_utc_text(term.values[0])}"]
            assert term.op is not None
            when = _age_threshold(term.values[0], reference)
            return [f"{term.qualifier}:{_FLIPPED[term.op]}{_z(when)}"]


def _utc_text(value: str) -> str:
    """A date unchanged, a time as ``YYYY-MM-DDTHH:MM:SSZ``."""
    if len(value) == 10:
        return value
    return _z(datetime.fromisoformat(value))


def _z(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _reference_time(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return now.astimezone(UTC).replace(microsecond=0)


def _age_threshold(age: str, reference: datetime) -> datetime:
    match = _AGE.fullmatch(age)
    assert match is not None
    return reference - int(match["n"]) * _AGE_UNITS[match["unit"]]


# ------------------------------------------------------------------------- evaluation


def matches(query: FilterQuery, item: Mapping[str, Any], now: datetime) -> bool:
    """Whether an issue/PR JSON object satisfies every term (and the default state).

    Missing or malformed fields never raise: an unknown date or author simply fails a
    positive condition.
    """
    reference = _reference_time(now)
    state = query.state
    if state != "all" and str(item.get("state") or "").lower() != state:
        return False
    return all(_term_matches(term, item, reference) for term in query.terms)


def _term_matches(term: Term, item: Mapping[str, Any], reference: datetime) -> bool:
    match term.qualifier:
        case "state":
            return True  # handled by matches()
        case "label":
            names = _label_names(item)
            found = any(v.casefold() in names for v in term.values)
        case "author":
            user = item.get("user")
            login = user.get("login") if isinstance(user, Mapping) else None
            found = isinstance(login, str) and login.casefold() == term.values[0].casefold()
        case "assignee":
            logins = _assignee_logins(item)
            if term.values[0] == "none":
                found = not logins
            else:
                found = term.values[0].casefold() in logins
        case _:
            when = _item_time(item.get(f"{term.qualifier}_at"))
            if when is None:
                return False
            start, start_inclusive, end, end_inclusive = _bounds(term, reference)
            if start is not None and (when < start or (when == start and not start_inclusive)):
                return False
            return end is None or when < end or (when == end and end_inclusive)
    return not found if term.negated else found


def _label_names(item: Mapping[str, Any]) -> set[str]:
    names = set()
    for label in item.get("labels") or ():
        name = label.get("name") if isinstance(label, Mapping) else label
        if isinstance(name, str):
            names.add(name.casefold())
    return names


def _assignee_logins(item: Mapping[str, Any]) -> set[str]:
    people = item.get("assignees")
    if people is None:
        single = item.get("assignee")
        people = [single] if single else []
    logins = set()
    for person in people if isinstance(people, list) else ():
        login = person.get("login") if isinstance(person, Mapping) else None
        if isinstance(login, str):
            logins.add(login.casefold())
    return logins


def _item_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _bounds(
    term: Term, reference: datetime | None
) -> tuple[datetime | None, bool, datetime | None, bool]:
    """(start, start inclusive, end, end inclusive) of a date term, in UTC."""
    op = term.op
    if term.is_age:
        assert reference is not None and op is not None
        when = _age_threshold(term.values[0], reference)
        # '<7d' = less than 7 days ago = after the threshold; '>' = before it.
        return {
            "<": (when, False, None, False),
            "<=": (when, True, None, False),
            ">": (None, False, when, False),
            ">=": (None, False, when, True),
        }[op]
    if op == "..":
        start, _ = _span(term.values[0])
        high, after_high = _span(term.values[1])
        if after_high is None:  # ends at a time: inclusive
            return start, True, high, True
        return start, True, after_high, False  # ends on a day: up to its end
    first, after = _span(term.values[0])
    if after is None:  # a time: exact bounds
        return {
            ">": (first, False, None, False),
            ">=": (first, True, None, False),
            "<": (None, False, first, False),
            "<=": (None, False, first, True),
            None: (first, True, first, True),
        }[op]
    return {  # a day: [first, after)
        ">": (after, True, None, False),
        ">=": (first, True, None, False),
        "<": (None, False, first, False),
        "<=": (None, False, after, False),
        None: (first, True, after, False),
    }[op]


def _span(text: str) -> tuple[datetime, datetime | None]:
    """A date's first instant and the next day's (UTC), or a time and None."""
    if len(text) == 10:
        start = datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        return start, start + timedelta(days=1)
    return datetime.fromisoformat(text).astimezone(UTC), None
