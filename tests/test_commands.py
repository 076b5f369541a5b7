"""Slash commands in comment bodies, and job triggers on them."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ghapp.triggers.commands import (
    CommandTrigger,
    CommandTriggerError,
    SlashCommand,
    best_matches,
    match_trigger,
    parse_command_trigger,
    parse_commands,
    split_lines,
)


def names(body: str | None) -> list[str]:
    return [command.name for command in parse_commands(body)]


# ---------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("body", [None, "", "\n\n", "just text", "LGTM!"])
def test_no_commands(body: str | None) -> None:
    assert parse_commands(body) == []


def test_a_command_alone() -> None:
    assert parse_commands("/triage") == [SlashCommand("triage", "", 1)]


def test_a_command_with_arguments() -> None:
    assert parse_commands("/review  security   please  ") == [
        SlashCommand("review", "security   please", 1)
    ]


def test_names_are_lower_cased_and_args_keep_their_case() -> None:
    assert parse_commands("/ReTest Unit-Tests") == [SlashCommand("retest", "Unit-Tests", 1)]


def test_name_characters() -> None:
    assert parse_commands("/a_b-c9 x") == [SlashCommand("a_b-c9", "x", 1)]


def test_tab_separates_arguments() -> None:
    assert parse_commands("/assign\t@me") == [SlashCommand("assign", "@me", 1)]


def test_several_commands_among_text() -> None:
    body = "Thanks!\n/lgtm\nsome text /not-this\n/hold cancel\n\n/approve\n"
    assert parse_commands(body) == [
        SlashCommand("lgtm", "", 2),
        SlashCommand("hold", "cancel", 4),
        SlashCommand("approve", "", 6),
    ]


def test_windows_and_old_mac_line_endings() -> None:
    assert parse_commands("hi\r\n/triage now\r\n/lgtm\r\r/hold\r") == [
        SlashCommand("triage", "now", 2),
        SlashCommand("lgtm", "", 3),
        SlashCommand("hold", "", 5),
    ]


@pytest.mark.parametrize(
    "line",
    [
        "/",
        "/ triage",
        "//x",
        "/123",
        "/1abc",
        "/_x",
        "/-x",
        "/foo/bar",
        "/path/to/file.py is broken",
        "/foo.",
        "/foo:bar",
        "/foo,bar",
        "/triage\u00a0now",  # no-break space is not a separator
        "/triage\x0bnow",
        " /triage",
        "\t/triage",
        "text /triage",
        "`/triage`",
        "\\/triage",
        "/tri\u00e4ge",
    ],
)
def test_not_a_command(line: str) -> None:
    assert parse_commands(line) == []
    assert parse_commands(f"text\n{line}\nmore") == []


@pytest.mark.parametrize("fence", ["```", "~~~", "````", "~~~~~", "   ```"])
def test_fenced_code_is_ignored(fence: str) -> None:
    body = f"/before\n{fence}\n/inside\n{fence.strip()}\n/after"
    assert names(body) == ["before", "after"]


@pytest.mark.parametrize("opening", ["```python", "``` shell session", "~~~ {.bash}", "~~~`x`"])
def test_fences_with_an_info_string(opening: str) -> None:
    closing = opening[:3]
    assert names(f"{opening}\n/inside\n{closing}\n/after") == ["after"]


def test_unterminated_fence_runs_to_the_end() -> None:
    assert names("/before\n```\n/inside\n\n/still-inside") == ["before"]
    assert names("/before\n~~~\n/inside") == ["before"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # a fence closes only with the same character...
        ("```\n~~~\n/inside\n```\n/after", ["after"]),
        ("~~~\n```\n/inside\n~~~\n/after", ["after"]),
        # ...at least as long as the opening...
        ("````\n```\n/inside\n````\n/after", ["after"]),
        # ...with nothing but whitespace after it...
        ("```\n``` x\n/inside\n```  \n/after", ["after"]),
        # ...and at most three spaces of indentation.
        ("```\n    ```\n/inside\n```\n/after", ["after"]),
        # Two backticks are inline code, not a fence; backticks in a backtick info
        # string make it inline code too.
        ("``\n/visible", ["visible"]),
        ("```a`b```\n/visible", ["visible"]),
        # Four spaces of indentation is an indented code block, not a fence.
        ("    ```\n/visible", ["visible"]),
        # Fences one after another.
        ("```\n/a\n```\n/b\n~~~\n/c\n~~~\n/d", ["b", "d"]),
    ],
)
def test_fence_rules(body: str, expected: list[str]) -> None:
    assert names(body) == expected


def test_crlf_fences() -> None:
    assert names("```\r\n/inside\r\n```\r\n/after\r\n") == ["after"]


@pytest.mark.parametrize("quote", ["> /triage", ">/triage", "   > /triage", "> > /triage"])
def test_blockquotes_are_ignored(quote: str) -> None:
    assert names(f"{quote}\n/mine") == ["mine"]


def test_a_fence_inside_a_blockquote_does_not_hide_what_follows() -> None:
    assert names("> ```\n> /quoted\n/mine") == ["mine"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<!--\n/hidden\n-->\n/visible", ["visible"]),
        ("<!-- template: use /kind bug\n/kind bug\n/kind cleanup\n-->\n/ok", ["ok"]),
        ("<!-- one line -->\n/visible", ["visible"]),
        ("<!-- unterminated\n/hidden\n\n/hidden-too", []),
        ("text <!-- inline\n/hidden\n--> text\n/visible", ["visible"]),
        # an inline '<!--' not closed before a blank line is literal text
        ("a <!-- b\n/visible\n\n-->\n/also", ["visible", "also"]),
        ("a <!-- b --> c\n/visible", ["visible"]),
        ("/cmd <!-- note\n/hidden\n-->", ["cmd"]),
        ("<!--\n-->\n/visible <!-- x\n/hidden\n-->", ["visible"]),
        ("x <!-- a\n--> y <!-- b\n/hidden\n-->\n/z", ["z"]),
        # comments and fences don't open inside each other
        ("```\n<!--\n```\n/visible", ["visible"]),
        ("<!--\n```\n-->\n/visible", ["visible"]),
        ("> <!--\n/visible\n-->", ["visible"]),
    ],
)
def test_html_comments_are_ignored(body: str, expected: list[str]) -> None:
    assert names(body) == expected


def test_line_numbers_count_every_line() -> None:
    body = "a\n```\n/x\n```\n> /q\n\n/yes"
    assert parse_commands(body) == [SlashCommand("yes", "", 7)]


# ---------------------------------------------------------------------------- triggers


@pytest.mark.parametrize(
    ("text", "trigger"),
    [
        ("/triage", CommandTrigger("triage", ())),
        ("  /Triage  ", CommandTrigger("triage", ())),
        ("/review security", CommandTrigger("review", ("security",))),
        ("/review\tSecurity  Deep", CommandTrigger("review", ("security", "deep"))),
        ("/a b c d", CommandTrigger("a", ("b", "c", "d"))),
        ("/run-tests_2 unit/x", CommandTrigger("run-tests_2", ("unit/x",))),
    ],
)
def test_trigger_parsing(text: str, trigger: CommandTrigger) -> None:
    assert parse_command_trigger(text) == trigger
    assert parse_command_trigger(str(trigger)) == trigger


def test_trigger_str() -> None:
    assert str(parse_command_trigger("/Review  Security")) == "/review security"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("triage", "must start with '/'"),
        ("@bot triage", "must start with '/'"),
        ("/", "not a command name"),
        ("/ triage", "not a command name"),
        ("//triage", "not a command name"),
        ("/123", "not a command name"),
        ("/foo/bar", "not a command name"),
        ("/tri.age", "not a command name"),
        ("/a b c d e", "at most 3 words"),
        ("/a\nb", "one line"),
        ("/a\r\n", "one line"),
        ("/a\x00", "one line"),
    ],
)
def test_bad_triggers(text: str, reason: str) -> None:
    with pytest.raises(CommandTriggerError) as caught:
        parse_command_trigger(text)
    message = str(caught.value)
    assert reason in message
    assert repr(text) in message
    assert isinstance(caught.value, ValueError)


# ---------------------------------------------------------------------------- matching


@pytest.mark.parametrize(
    ("trigger", "command", "expected"),
    [
        ("/triage", SlashCommand("triage", "", 1), ""),
        ("/triage", SlashCommand("triage", "now please", 1), "now please"),
        ("/triage", SlashCommand("triaged", "", 1), None),
        ("/triage", SlashCommand("lgtm", "", 1), None),
        ("/review security", SlashCommand("review", "security", 1), ""),
        ("/review security", SlashCommand("review", "SECURITY  check  auth ", 1), "check  auth"),
        ("/review security", SlashCommand("review", "securityx", 1), None),
        ("/review security", SlashCommand("review", "", 1), None),
        ("/review security", SlashCommand("review", "perf security", 1), None),
        ("/review security deep", SlashCommand("review", "security\tdeep x", 1), "x"),
        ("/review security deep", SlashCommand("review", "security", 1), None),
        ("/Review", SlashCommand("review", "Keep Case", 1), "Keep Case"),
    ],
)
def test_match_trigger(trigger: str, command: SlashCommand, expected: str | None) -> None:
    assert match_trigger(parse_command_trigger(trigger), command) == expected


def test_match_trigger_on_parsed_commands() -> None:
    [command] = parse_commands("thanks\r\n/Review Security focus on auth\r\n")
    assert match_trigger(parse_command_trigger("/review security"), command) == "focus on auth"


JOBS = [
    ("review", parse_command_trigger("/review")),
    ("security", parse_command_trigger("/review security")),
    ("security-deep", parse_command_trigger("/review security deep")),
    ("triage", parse_command_trigger("/triage")),
    ("security-2", parse_command_trigger("/Review SECURITY")),
]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("", [("review", "")]),
        ("perf", [("review", "perf")]),
        ("security x", [("security", "x"), ("security-2", "x")]),
        ("security", [("security", ""), ("security-2", "")]),
        ("security deep now", [("security-deep", "now")]),
        ("securityx", [("review", "securityx")]),
    ],
)
def test_best_matches_picks_the_most_specific(args: str, expected: list[tuple[str, str]]) -> None:
    assert best_matches(JOBS, SlashCommand("review", args, 1)) == expected


def test_best_matches_with_no_match() -> None:
    assert best_matches(JOBS, SlashCommand("lgtm", "", 1)) == []
    assert best_matches([], SlashCommand("review", "", 1)) == []


# -------------------------------------------------------------------------- properties

COMMAND_START = re.compile(r"/([a-zA-Z][a-zA-Z0-9_-]*)")

MARKDOWNISH = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "/triage",
                "/review security",
                "/x y",
                "```",
                "~~~",
                "```py",
                "> /quoted",
                "<!--",
                "-->",
                "a <!-- b",
                "",
                "  /indented",
                "/foo/bar",
            ]
        ),
        st.text(max_size=20),
    ),
    max_size=20,
)
NEWLINES = st.sampled_from(["\n", "\r\n", "\r"])


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(), st.builds(lambda lines, nl: nl.join(lines), MARKDOWNISH, NEWLINES)))
def test_parse_commands_never_raises_and_finds_real_lines(body: str) -> None:
    commands = parse_commands(body)
    lines = split_lines(body)
    assert [c.line for c in commands] == sorted({c.line for c in commands})
    for command in commands:
        line = lines[command.line - 1]
        start = COMMAND_START.match(line)
        assert start is not None
        assert start[1].lower() == command.name
        assert line[1 : 1 + len(command.name)].lower() == command.name
        rest = line[start.end() :]
        assert rest == "" or rest[0] in " \t"
        assert rest.strip() == command.args
        assert "\n" not in command.args and "\r" not in command.args


@settings(max_examples=200, deadline=None)
@given(
    name=st.from_regex(r"\A[a-zA-Z][a-zA-Z0-9_-]{0,15}\Z"),
    args=st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=30),
    before=st.lists(st.sampled_from(["text", "", "# heading", "- item", "`x`"]), max_size=3),
)
def test_a_command_line_in_plain_text_is_found(name: str, args: str, before: list[str]) -> None:
    line = f"/{name} {args}" if args else f"/{name}"
    commands = parse_commands("\n".join([*before, line]))
    assert commands == [SlashCommand(name.lower(), args.strip(), len(before) + 1)]
