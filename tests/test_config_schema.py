"""``.github/ghapp.yml``'s format: jobs as JobSpec fields, every problem with its line."""

from __future__ import annotations

import pytest

from ghapp.config.schema import (
    CONFIG_EXAMPLE,
    ConfigInvalid,
    parse_config,
    validate_config,
)

REPO_ID = 42


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigInvalid) as caught:
        validate_config(parse_config(text), REPO_ID)
    return [str(p) for p in caught.value.problems]


def jobs(text: str) -> dict:
    return {job.name: job for job in validate_config(parse_config(text), REPO_ID)}


def test_the_documented_example_is_valid() -> None:
    found = jobs(CONFIG_EXAMPLE)
    assert list(found) == [
        "Triage new issues",
        "Review pull requests",
        "Weekly stale bug sweep",
        "CLAUDE.md watch",
    ]
    review = found["Review pull requests"].spec
    assert review.repo_id == REPO_ID and review.target_type == "prs"
    assert review.event_triggers[0].event == "pull_request.opened"
    assert review.event_triggers[0].draft is False
    assert review.command_triggers == ["/review"]
    sweep = found["Weekly stale bug sweep"].spec
    assert (sweep.cron_expression, sweep.timezone) == ("0 9 * * 1", "Europe/Berlin")
    assert sweep.filter_query and sweep.custom_prompt and sweep.notifier_ids == [1]
    watch = found["CLAUDE.md watch"].spec
    assert watch.threshold is not None and watch.threshold.metric == "context_score"
    assert (watch.runner, watch.max_retries, watch.timeout_seconds) == ("builtin", 1, 600)


def test_short_names_and_jobspec_names_are_both_accepted() -> None:
    short = jobs(
        "version: 1\njobs:\n  - name: a\n    cron: '@daily'\n    target: codebase\n"
        "    command: codebase/health-check\n"
    )
    long = jobs(
        "version: 1\njobs:\n  - name: a\n    cron_expression: '@daily'\n"
        "    target_type: codebase\n    command_id: codebase/health-check\n"
    )
    assert short["a"].spec == long["a"].spec
    both = "version: 1\njobs:\n  - name: a\n    cron: '@daily'\n    cron_expression: '@hourly'\n"
    assert problems(both + "    prompt: x\n") == [
        "line 5: jobs[0].cron_expression: give either cron or cron_expression, not both"
    ]


def test_single_strings_status_and_enabled() -> None:
    found = jobs(
        "version: 1\njobs:\n"
        "  - name: a\n    events: issues.opened\n    commands: /triage\n    prompt: x\n"
        "  - name: b\n    enabled: false\n    prompt: x\n"
        "  - name: c\n    prompt: x\n"
    )
    assert [t.event for t in found["a"].spec.event_triggers] == ["issues.opened"]
    assert found["a"].spec.command_triggers == ["/triage"]
    assert (found["b"].spec.status, found["b"].status_given) == ("paused", True)
    assert found["c"].status_given is False  # the job keeps the status it has


def test_a_bad_cron_expression_names_its_line() -> None:
    text = (
        "version: 1\n"
        "jobs:\n"
        "  - name: fine\n"
        "    prompt: hello\n"
        "  - name: nightly\n"
        "    prompt: hello\n"
        "    cron: 0 25 * * *\n"
    )
    assert problems(text) == [
        "line 7: jobs[1].cron: cron expression '0 25 * * *': hour 25 out of range 0-23"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "version: 1\njobs:\n  - name: a\n    cron: */5 * * * *\n    prompt: x\n",
            "line 4: invalid YAML: expected alphabetic or numeric character, but found '/' "
            '(quote values that start with * such as cron: "*/5 * * * *")',
        ),
        (
            "version: 1\njobs:\n  - name: a\n    prompt: [x\n",
            "line 5: invalid YAML: expected ',' or ']', but got '<stream end>'",
        ),
        (
            "version: 1\njobs:\n  - name: a\n    cron: '@daily'\n    promt: x\n",
            "line 5: jobs[0].promt: unknown key (did you mean prompt?)",
        ),
        (
            "version: 1\njobs:\n  - name: a\n    prompt: x\n    prompt: y\n",
            "line 5: jobs[0].prompt: duplicate key (first on line 4)",
        ),
        (
            "version: 1\njobs:\n  - name: a\n    prompt: x\n  - name: a\n    prompt: y\n",
            "line 5: jobs[1].name: 'a' is already the name of jobs[0]",
        ),
        (
            "version: 1\njobs:\n  - name: a\n    prompt: x\n    repo_id: 7\n",
            "line 5: jobs[0].repo_id: not allowed here: jobs in .github/ghapp.yml are for the "
            "repository the file is in",
        ),
        (
            "version: 1\njobs:\n  - name: a\n    runner: shell\n    prompt: x\n",
            "line 4: jobs[0].runner: shell jobs can only be created through the API",
        ),
        (
            "version: 1\njobs:\n  - name: a\n    shell_command: rm -rf /\n",
            "line 4: jobs[0].shell_command: not allowed here: shell jobs can only be created "
            "through the API",
        ),
        (
            "version: 1\njobs:\n  - name: a\n    target: codebase\n",
            "line 3: jobs[0]: a job needs a command or a prompt",
        ),
        (
            "version: 1\njobs:\n  - name: a\n    prompt: x\n    target: codebase\n"
            "    filter: label:bug\n",
            "line 6: jobs[0].filter: filter does not apply to target 'codebase'",
        ),
        (
            "version: 1\njobs:\n  - name: a\n    prompt: x\n    cron: '@daily'\n"
            "    interval_minutes: 60\n",
            "line 5: jobs[0].cron: a job has at most one time trigger, got cron and "
            "interval_minutes",
        ),
        (
            "version: 1\njobs:\n  - name: a\n    prompt: x\n    events:\n"
            "      - issues.opened\n      - event: issues.labeled\n        label: [bug]\n",
            "line 8: jobs[0].events[1].label: unknown key",
        ),
        (
            "version: 1\njobs:\n  - name: a\n    command: issue/nope\n",
            "line 4: jobs[0].command: unknown command 'issue/nope' (known: code/ask, "
            "codebase/health-check, context/analyze, context/optimize, issue/root-cause, issue/triage, "
            "pr/review, pr/security-review)",
        ),
        (
            "version: 1\njobs:\n  - name: a\n    prompt: x\n    max_items: lots\n",
            "line 5: jobs[0].max_items: Input should be a valid integer, unable to parse string "
            "as an integer",
        ),
        (
            "version: 1\njobs:\n  - name: a\n    prompt: x\n    threshold:\n      metric: nope\n"
            "      operator: lt\n      value: 3\n      check_cron: '@daily'\n",
            "line 6: jobs[0].threshold.metric: unknown metric 'nope' (known: claude_md_tokens, "
            "context_score, open_issues, stale_prs)",
        ),
        ("version: 1\njobs:\n  - prompt: x\n", "line 3: jobs[0]: name: is required (a text)"),
        (
            "version: 1\njobs:\n  - just a string\n",
            "line 3: jobs[0]: each job is a mapping starting with name:",
        ),
        ("version: 2\njobs: []\n", "line 1: version: unsupported version 2 (use 1)"),
        ("jobs: []\n", "line 1: version: is required (version: 1)"),
        ("version: 1\njob: []\n", "line 2: job: unknown key (did you mean jobs?)"),
        (
            "version: 1\njobs:\n  name: a\n",
            "line 2: jobs: must be a list of jobs (each starting with - name: ...)",
        ),
        ("", "line 1: the file is empty (it needs version: 1)"),
        ("[1, 2]\n", "line 1: expected keys version: and jobs:"),
        (
            "version: 1\njobs:\n  - name: a\n    prompt: !!python/object/apply:os.system [ls]\n",
            "line 4: jobs[0].prompt: unsupported YAML tag "
            "tag:yaml.org,2002:python/object/apply:os.system",
        ),
        (
            "version: 1\njobs:\n  - name: a\n    prompt: !!python/name:os.system x\n",
            "line 4: jobs[0].prompt: invalid YAML: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/name:os.system'",
        ),
        (
            "version: 1\n---\nversion: 1\n",
            "line 2: invalid YAML: expected a single document in the stream, but found another "
            "document",
        ),
    ],
)
def test_problems_name_the_line_and_the_key_written(text: str, expected: str) -> None:
    assert problems(text)[0] == expected


def test_every_problem_is_reported_in_line_order() -> None:
    text = (
        "version: 1\njobs:\n"
        "  - name: b\n    prompt: x\n    cron: 0 0 32 * *\n"
        "  - name: a\n    prompt: x\n    events: [issues.bogus]\n"
        "    timezone: Mars/Olympus\n"
    )
    found = problems(text)
    assert [p.split(":")[0] for p in found] == ["line 5", "line 8", "line 9"]
    assert found[1].startswith("line 8: jobs[1].events[0]: unknown action 'bogus' for issues")


def test_merge_keys_and_anchors_work() -> None:
    found = jobs(
        "version: 1\njobs:\n"
        "  - &base\n    name: a\n    prompt: shared prompt\n    max_items: 3\n"
        "  - <<: *base\n    name: b\n    max_items: 4\n"
    )
    assert found["b"].spec.custom_prompt == "shared prompt"
    assert (found["a"].spec.max_items, found["b"].spec.max_items) == (3, 4)


def test_alias_bombs_and_huge_files_are_refused() -> None:
    bomb = "version: 1\na: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
    )
    assert "too large or too deeply nested" in problems(bomb)[0]
    assert "too large or too deeply nested" in problems("version: 1\njobs: &j [*j]\n")[0]
    assert "larger than" in problems("version: 1\n# " + "x" * 300_000 + "\n")[0]


def test_an_empty_job_list_is_valid() -> None:
    assert jobs("version: 1\njobs: []\n") == {}
    assert jobs("version: 1\n") == {}
