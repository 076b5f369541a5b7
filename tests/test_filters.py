"""The job filter query: parsing, canonical form, search translation and evaluation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ghapp.jobs.filters import (
    QUALIFIERS,
    FilterError,
    FilterQuery,
    Term,
    matches,
    parse_filter,
    to_search_query,
)

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)


def search(text: str, target: str = "issues", now: datetime = NOW) -> str:
    return to_search_query(parse_filter(text), repo="octo/repo", target=target, now=now)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t"])
def test_empty_is_the_empty_query(text: str | None) -> None:
    query = parse_filter(text)
    assert query == FilterQuery(())
    assert query.state == "open"
    assert str(query) == ""


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("state:open", Term("state", ("open",))),
        ("state:closed", Term("state", ("closed",))),
        ("state:all", Term("state", ("all",))),
        ("State:OPEN", Term("state", ("open",))),
        ("label:bug", Term("label", ("bug",))),
        ("label:bug,enhancement", Term("label", ("bug", "enhancement"))),
        ('label:"help wanted"', Term("label", ("help wanted",))),
        ('label:"help wanted",bug', Term("label", ("help wanted", "bug"))),
        ("label:area:ui", Term("label", ("area:ui",))),
        ("label:🐛", Term("label", ("🐛",))),
        ("-label:wontfix", Term("label", ("wontfix",), negated=True)),
        ("author:octocat", Term("author", ("octocat",))),
        ("author:dependabot[bot]", Term("author", ("dependabot[bot]",))),
        ("author:a-b-c", Term("author", ("a-b-c",))),
        ("-author:octocat", Term("author", ("octocat",), negated=True)),
        ("assignee:octocat", Term("assignee", ("octocat",))),
        ("assignee:none", Term("assignee", ("none",))),
        ("assignee:NONE", Term("assignee", ("none",))),
        ("-assignee:none", Term("assignee", ("none",), negated=True)),
        ("-assignee:octocat", Term("assignee", ("octocat",), negated=True)),
        ("created:>2024-01-01", Term("created", ("2024-01-01",), op=">")),
        ("created:<2024-01-01", Term("created", ("2024-01-01",), op="<")),
        ("created:>=2024-01-01", Term("created", ("2024-01-01",), op=">=")),
        ("created:<=2024-01-01", Term("created", ("2024-01-01",), op="<=")),
        ("created:2024-01-01", Term("created", ("2024-01-01",))),
        (
            "created:2024-01-01..2024-02-01",
            Term("created", ("2024-01-01", "2024-02-01"), op=".."),
        ),
        ("created:2024-01-01..2024-01-01", Term("created", ("2024-01-01", "2024-01-01"), op="..")),
        (
            "updated:>2024-01-01T10:00:00Z",
            Term("updated", ("2024-01-01T10:00:00Z",), op=">"),
        ),
        (
            "updated:<2024-01-01T10:00:00+02:00",
            Term("updated", ("2024-01-01T10:00:00+02:00",), op="<"),
        ),
        ("updated:<7d", Term("updated", ("7d",), op="<")),
        ("updated:>30d", Term("updated", ("30d",), op=">")),
        ("updated:<=12h", Term("updated", ("12h",), op="<=")),
        ("created:>=2w", Term("created", ("2w",), op=">=")),
        ("updated:<9999w", Term("updated", ("9999w",), op="<")),
    ],
)
def test_every_form_parses(text: str, term: Term) -> None:
    query = parse_filter(text)
    assert query.terms == (term,)
    assert parse_filter(str(query)) == query


def test_terms_keep_their_order_and_state_is_read() -> None:
    query = parse_filter("  label:a \t state:closed\n-label:b  ")
    assert [t.qualifier for t in query.terms] == ["label", "state", "label"]
    assert query.state == "closed"
    assert str(query) == "label:a state:closed -label:b"


def test_canonical_form_quotes_only_what_needs_it() -> None:
    query = parse_filter('label:"bug","help wanted" Author:Octocat')
    assert str(query) == 'label:bug,"help wanted" author:Octocat'


def test_repeatable_qualifiers() -> None:
    query = parse_filter("label:a label:b -author:x -author:y assignee:p assignee:q")
    assert len(query.terms) == 6


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("lable:bug", "unknown qualifier 'lable'"),
        ("is:open", "unknown qualifier 'is'"),
        ("bug", "bare words"),
        ("-bug", "bare words"),
        ("-", "bare words"),
        ('"label:bug"', "bare words"),
        (":bug", "missing qualifier"),
        ("-:bug", "missing qualifier"),
        ("--label:bug", "unknown qualifier '-label'"),
        ("label:", "empty value"),
        ('label:""', "empty value"),
        ("label:a,,b", "empty value"),
        ("label:a,", "empty value"),
        ("state:", "empty value"),
        ("author:", "empty value"),
        ("created:", "empty value"),
        ('label:a"b c"', "quote a whole value"),
        ('label:"a""b"', "quote a whole value"),
        ('label:"a,b"', "comma"),
        ('label:" padded"', "whitespace"),
        ("label:" + "x" * 51, "at most 50"),
        ("label:a\x00b", "control"),
        ("-state:open", "state can't be negated"),
        ("-created:>2024-01-01", "created can't be negated"),
        ("-updated:<7d", "updated can't be negated"),
        ("state:merged", "state must be one of"),
        ("state:open,closed", "single value"),
        ("author:a,b", "single value"),
        ("assignee:a,b", "single value"),
        ("author:-octocat", "not a GitHub username"),
        ("author:octocat-", "not a GitHub username"),
        ("author:octo--cat", "not a GitHub username"),
        ("author:octo_cat", "not a GitHub username"),
        ("author:@me", "not a GitHub username"),
        ("author:" + "a" * 40, "not a GitHub username"),
        ("assignee:bot[bot]x", "not a GitHub username"),
        ("assignee:[bot]", "not a GitHub username"),
        ("author:ünïcode", "not a GitHub username"),
        ("created:yesterday", "is not a date"),
        ("created:2024-1-1", "is not a date"),
        ("created:2024-02-30", "not a valid date"),
        ("created:2024-13-01", "not a valid date"),
        ("created:1969-12-31", "years 1970-2999"),
        ("created:>3000-01-01", "years 1970-2999"),
        ("created:>2024-01-01T10:00:00", "is not a date"),
        ("created:>2024-01-01T25:00:00Z", "not a valid date"),
        ("created:>", "missing date after '>'"),
        ("created:>=", "missing date after '>='"),
        ("created:>>2024-01-01", "is not a date"),
        ("created:2024-01-01..", "both ends"),
        ("created:..2024-01-01", "both ends"),
        ("created:2024-02-01..2024-01-01", "starts after it ends"),
        ("created:2024-01-01..2024-02-01..2024-03-01", "is not a date"),
        ("created:1d..2d", "an age needs < or >"),
        ("updated:7d", "an age needs < or >"),
        ("updated:<7x", "is not a date"),
        ("updated:<7", "is not a date"),
        ("updated:<d", "is not a date"),
        ("updated:<0d", "is not a date"),
        ("updated:<07d", "is not a date"),
        ("updated:<10000d", "is not a date"),
        ("updated:<7D", "is not a date"),
        ("updated:<\u0667d", "is not a date"),  # an Arabic-Indic digit seven
    ],
)
def test_bad_tokens_are_rejected_and_named(token: str, reason: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(f"label:fine {token} label:never-reached")
    error = caught.value
    assert error.token == token
    assert reason in error.reason
    assert str(error) == f"filter token '{token}': {error.reason}"
    assert isinstance(error, ValueError)


def test_unknown_qualifier_message_lists_the_known_ones() -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter("lable:bug")
    assert str(caught.value) == (
        "filter token 'lable:bug': unknown qualifier 'lable' "
        "(expected one of: assignee, author, created, label, state, updated)"
    )


def test_the_first_bad_token_is_reported() -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter("label:ok nope:1 also-bad")
    assert caught.value.token == "nope:1"


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("state:open state:closed", "state:closed"),
        ("state:open state:open", "state:open"),
        ("author:a author:b", "author:b"),
    ],
)
def test_single_valued_fields_once(text: str, token: str) -> None:
    with pytest.raises(FilterError, match="more than once") as caught:
        parse_filter(text)
    assert caught.value.token == token


def test_negated_author_does_not_count_as_the_author() -> None:
    assert len(parse_filter("author:a -author:b").terms) == 2


def test_an_unterminated_quote_names_the_rest_of_the_text() -> None:
    with pytest.raises(FilterError, match="unterminated quote") as caught:
        parse_filter('label:ok label:"help wanted')
    assert caught.value.token == 'label:"help wanted'


# ------------------------------------------------------------------------ translation


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "repo:octo/repo is:issue is:open"),
        ("state:open", "repo:octo/repo is:issue is:open"),
        ("state:closed", "repo:octo/repo is:issue is:closed"),
        ("state:all", "repo:octo/repo is:issue"),
        ("label:bug", "repo:octo/repo is:issue is:open label:bug"),
        ("label:bug,enhancement", "repo:octo/repo is:issue is:open label:bug,enhancement"),
        ('label:"help wanted"', 'repo:octo/repo is:issue is:open label:"help wanted"'),
        ('label:bug,"help wanted"', 'repo:octo/repo is:issue is:open label:bug,"help wanted"'),
        ("-label:wontfix", "repo:octo/repo is:issue is:open -label:wontfix"),
        ('-label:a,"b c"', 'repo:octo/repo is:issue is:open -label:a -label:"b c"'),
        ("author:octocat", "repo:octo/repo is:issue is:open author:octocat"),
        ("-author:octocat", "repo:octo/repo is:issue is:open -author:octocat"),
        ("author:renovate[bot]", "repo:octo/repo is:issue is:open author:app/renovate"),
        ("-author:renovate[bot]", "repo:octo/repo is:issue is:open -author:app/renovate"),
        ("assignee:octocat", "repo:octo/repo is:issue is:open assignee:octocat"),
        ("-assignee:octocat", "repo:octo/repo is:issue is:open -assignee:octocat"),
        ("assignee:none", "repo:octo/repo is:issue is:open no:assignee"),
        ("-assignee:none", "repo:octo/repo is:issue is:open -no:assignee"),
        ("created:>2024-01-01", "repo:octo/repo is:issue is:open created:>2024-01-01"),
        ("created:<=2024-01-01", "repo:octo/repo is:issue is:open created:<=2024-01-01"),
        ("created:2024-01-01", "repo:octo/repo is:issue is:open created:2024-01-01"),
        (
            "created:2024-01-01..2024-02-01",
            "repo:octo/repo is:issue is:open created:2024-01-01..2024-02-01",
        ),
        (
            "created:2024-01-01..2024-02-01T10:00:00+02:00",
            "repo:octo/repo is:issue is:open created:2024-01-01..2024-02-01T08:00:00Z",
        ),
        (
            "updated:>=2024-01-01T10:00:00-05:00",
            "repo:octo/repo is:issue is:open updated:>=2024-01-01T15:00:00Z",
        ),
        # Ages: now = 2025-06-15T12:00Z; '<7d' = less than 7 days ago = after now - 7d.
        ("updated:<7d", "repo:octo/repo is:issue is:open updated:>2025-06-08T12:00:00Z"),
        ("updated:<=7d", "repo:octo/repo is:issue is:open updated:>=2025-06-08T12:00:00Z"),
        ("updated:>30d", "repo:octo/repo is:issue is:open updated:<2025-05-16T12:00:00Z"),
        ("updated:>=30d", "repo:octo/repo is:issue is:open updated:<=2025-05-16T12:00:00Z"),
        ("updated:<12h", "repo:octo/repo is:issue is:open updated:>2025-06-15T00:00:00Z"),
        ("created:>2w", "repo:octo/repo is:issue is:open created:<2025-06-01T12:00:00Z"),
        (
            'state:all label:"help wanted" -label:wontfix assignee:none updated:>30d',
            'repo:octo/repo is:issue label:"help wanted" -label:wontfix no:assignee '
            "updated:<2025-05-16T12:00:00Z",
        ),
    ],
)
def test_translation(text: str, expected: str) -> None:
    assert search(text) == expected


def test_pull_requests() -> None:
    assert search("label:bug", target="prs") == "repo:octo/repo is:pr is:open label:bug"


def test_ages_use_now_in_utc_truncated_to_the_second() -> None:
    now = datetime(2025, 6, 15, 14, 0, 0, 999_999, tzinfo=timezone(timedelta(hours=2)))
    assert search("updated:<1h", now=now) == (
        "repo:octo/repo is:issue is:open updated:>2025-06-15T11:00:00Z"
    )


def test_translation_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        search("updated:<7d", now=datetime(2025, 6, 15, 12))


@pytest.mark.parametrize("repo", ["", "octo", "octo/", "/repo", "octo/repo/x", "o o/r", "o/.."])
def test_translation_checks_the_repo(repo: str) -> None:
    with pytest.raises(ValueError, match="repository"):
        to_search_query(parse_filter(""), repo=repo, target="issues", now=NOW)


def test_translation_checks_the_target() -> None:
    with pytest.raises(ValueError, match="target"):
        to_search_query(parse_filter(""), repo="o/r", target="commits", now=NOW)  # type: ignore[arg-type]


# ------------------------------------------------------------------------- evaluation


def issue(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "state": "open",
        "labels": [{"name": "Bug"}, {"name": "help wanted"}],
        "user": {"login": "Octocat"},
        "assignees": [{"login": "hubot"}],
        "created_at": "2024-01-15T10:00:00Z",
        "updated_at": "2025-06-10T09:30:00Z",
    }
    item.update(changes)
    return item


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("state:open", True),
        ("state:closed", False),
        ("state:all", True),
        ("label:bug", True),  # case-insensitive
        ("label:BUG", True),
        ("label:docs", False),
        ("label:docs,bug", True),
        ('label:"help wanted" label:bug', True),
        ("label:bug label:docs", False),
        ("-label:bug", False),
        ("-label:docs", True),
        ("-label:docs,bug", False),
        ("author:octocat", True),
        ("author:hubot", False),
        ("-author:octocat", False),
        ("-author:hubot", True),
        ("assignee:HUBOT", True),
        ("assignee:octocat", False),
        ("-assignee:hubot", False),
        ("assignee:none", False),
        ("-assignee:none", True),
        ("created:2024-01-15", True),
        ("created:2024-01-14", False),
        ("created:>2024-01-14", True),
        ("created:>2024-01-15", False),
        ("created:>=2024-01-15", True),
        ("created:<2024-01-15", False),
        ("created:<=2024-01-15", True),
        ("created:<2024-01-16", True),
        ("created:2024-01-15..2024-01-15", True),
        ("created:2024-01-01..2024-01-14", False),
        ("created:2024-01-16..2024-02-01", False),
        ("created:>2024-01-15T10:00:00Z", False),
        ("created:>=2024-01-15T10:00:00Z", True),
        ("created:<=2024-01-15T10:00:00Z", True),
        ("created:<2024-01-15T10:00:00Z", False),
        ("created:2024-01-15T10:00:00Z", True),
        ("created:2024-01-15T12:00:00+02:00", True),
        ("created:2024-01-01..2024-01-15T10:00:00Z", True),
        ("created:2024-01-01..2024-01-15T09:59:59Z", False),
        # now = 2025-06-15T12:00Z, updated 2025-06-10T09:30Z (5 days 2.5 hours ago)
        ("updated:<7d", True),
        ("updated:<5d", False),
        ("updated:>5d", True),
        ("updated:>7d", False),
        ("updated:<1w", True),
        ("updated:<122h", False),
        ("updated:<123h", True),
        ("created:>1w", True),
        ("created:<1w", False),
    ],
)
def test_matches(text: str, expected: bool) -> None:
    assert matches(parse_filter(text), issue(), NOW) is expected


def test_matches_at_an_age_boundary() -> None:
    exactly_7_days = issue(updated_at="2025-06-08T12:00:00Z")
    assert not matches(parse_filter("updated:<7d"), exactly_7_days, NOW)
    assert matches(parse_filter("updated:<=7d"), exactly_7_days, NOW)
    assert not matches(parse_filter("updated:>7d"), exactly_7_days, NOW)
    assert matches(parse_filter("updated:>=7d"), exactly_7_days, NOW)


def test_matches_default_state_is_open() -> None:
    closed = issue(state="closed")
    assert not matches(parse_filter(""), closed, NOW)
    assert not matches(parse_filter("label:bug"), closed, NOW)
    assert matches(parse_filter("state:closed"), closed, NOW)
    assert matches(parse_filter("state:all"), closed, NOW)


def test_matches_unassigned_and_single_assignee_field() -> None:
    assert matches(parse_filter("assignee:none"), issue(assignees=[]), NOW)
    assert not matches(parse_filter("-assignee:none"), issue(assignees=[]), NOW)
    legacy = issue()
    del legacy["assignees"]
    legacy["assignee"] = {"login": "hubot"}
    assert matches(parse_filter("assignee:hubot"), legacy, NOW)
    legacy["assignee"] = None
    assert matches(parse_filter("assignee:none"), legacy, NOW)


def test_matches_bot_authors_by_login() -> None:
    item = issue(user={"login": "dependabot[bot]"})
    assert matches(parse_filter("author:dependabot[bot]"), item, NOW)
    assert not matches(parse_filter("author:dependabot"), item, NOW)


def test_matches_tolerates_missing_or_odd_fields() -> None:
    bare: dict[str, Any] = {"state": "open"}
    assert matches(parse_filter(""), bare, NOW)
    assert not matches(parse_filter("label:bug"), bare, NOW)
    assert matches(parse_filter("-label:bug"), bare, NOW)
    assert not matches(parse_filter("author:octocat"), bare, NOW)
    assert matches(parse_filter("-author:octocat"), bare, NOW)
    assert matches(parse_filter("assignee:none"), bare, NOW)
    assert not matches(parse_filter("updated:<7d"), bare, NOW)
    assert not matches(parse_filter("updated:<7d"), issue(updated_at="garbage"), NOW)
    assert matches(parse_filter("label:bug"), issue(labels=["bug"]), NOW)
    assert not matches(parse_filter("label:bug"), issue(labels=[{"id": 1}, None]), NOW)


def test_matches_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        matches(parse_filter(""), issue(), datetime(2025, 6, 15))


# ------------------------------------------------------------------------- properties

LOGINS = st.from_regex(r"\A[A-Za-z0-9]{1,10}(-[A-Za-z0-9]{1,10}){0,2}(\[bot\])?\Z")
LABELS = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters='",'
    ),
    min_size=1,
    max_size=20,
).filter(lambda s: s == s.strip())
DATES = st.dates(min_value=datetime(1970, 1, 1).date(), max_value=datetime(2999, 1, 1).date())
TIMES = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2998, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ"))
POINTS = st.one_of(DATES.map(str), TIMES)
AGES = st.builds(lambda n, u: f"{n}{u}", st.integers(1, 9999), st.sampled_from("hdw"))
NEG = st.sampled_from(["", "-"])


@st.composite
def date_tokens(draw: st.DrawFn) -> str:
    qualifier = draw(st.sampled_from(["created", "updated"]))
    kind = draw(st.sampled_from(["cmp", "age", "on", "range"]))
    if kind == "cmp":
        return f"{qualifier}:{draw(st.sampled_from(['<', '>', '<=', '>=']))}{draw(POINTS)}"
    if kind == "age":
        return f"{qualifier}:{draw(st.sampled_from(['<', '>', '<=', '>=']))}{draw(AGES)}"
    if kind == "on":
        return f"{qualifier}:{draw(POINTS)}"
    low, high = sorted([draw(DATES), draw(DATES)])
    return f"{qualifier}:{low}..{high}"


TOKENS = st.one_of(
    st.builds(
        lambda n, labels: f"{n}label:" + ",".join(f'"{v}"' for v in labels),
        NEG,
        st.lists(LABELS, min_size=1, max_size=3),
    ),
    st.builds(lambda n, login: f"{n}author:{login}", st.just("-"), LOGINS),
    st.builds(lambda n, login: f"{n}assignee:{login}", NEG, st.one_of(LOGINS, st.just("none"))),
    date_tokens(),
)


@st.composite
def valid_queries(draw: st.DrawFn) -> str:
    tokens = draw(st.lists(TOKENS, max_size=6))
    if draw(st.booleans()):
        tokens.append(f"author:{draw(LOGINS)}")
    if draw(st.booleans()):
        tokens.append(f"state:{draw(st.sampled_from(['open', 'closed', 'all']))}")
    tokens = draw(st.permutations(tokens))
    separators = draw(st.lists(st.sampled_from([" ", "  ", "\t", "\n"]), min_size=len(tokens)))
    return "".join(sep + token for sep, token in zip(separators, tokens, strict=False))


@settings(max_examples=300, deadline=None)
@given(valid_queries())
def test_round_trip_through_the_canonical_form(text: str) -> None:
    query = parse_filter(text)
    canonical = str(query)
    assert parse_filter(canonical) == query
    assert str(parse_filter(canonical)) == canonical
    # and every valid query translates and evaluates without error
    search_query = to_search_query(query, repo="o/r", target="issues", now=NOW)
    assert search_query.startswith("repo:o/r is:issue")
    assert isinstance(matches(query, issue(), NOW), bool)


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.lists(
            st.one_of(
                st.sampled_from([f"{q}:" for q in QUALIFIERS] + ["-", '"', ",", "..", ">", "<"]),
                st.text(max_size=8),
                st.from_regex(r"\A[0-9]{1,4}[-:T.]?[0-9hdwZ]{0,3}\Z"),
            ),
            max_size=12,
        ).map("".join),
    )
)
def test_arbitrary_text_parses_or_raises_filter_error(text: str) -> None:
    try:
        query = parse_filter(text)
    except FilterError as error:
        assert error.token
        assert error.token in text
        assert f"'{error.token}'" in str(error)
        return
    assert parse_filter(str(query)) == query
    to_search_query(query, repo="o/r", target="prs", now=NOW)
    matches(query, issue(), NOW)
