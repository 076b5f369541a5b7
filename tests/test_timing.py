"""ghapp.scheduler.timing: cron/interval occurrences in UTC, with cronie's DST rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ghapp.scheduler.timing import (
    CronSchedule,
    IntervalSchedule,
    InvalidSchedule,
    cron_schedule,
    describe_cron,
    interval_schedule,
    parse_timezone,
    upcoming,
    validate_cron,
)

NY = "America/New_York"
BERLIN = "Europe/Berlin"
LORD_HOWE = "Australia/Lord_Howe"
HOUR = timedelta(hours=1)
TICK = timedelta(microseconds=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def local_day(zone: str, year: int, month: int, day: int) -> tuple[datetime, datetime]:
    """(start, end] window covering exactly one local calendar day [00:00, 24:00)."""
    tz = ZoneInfo(zone)
    start = datetime(year, month, day, tzinfo=tz).astimezone(UTC)
    end = (datetime(year, month, day, tzinfo=tz) + timedelta(days=1)).astimezone(UTC)
    return start - TICK, end - TICK


def series(first: datetime, step: timedelta, count: int) -> list[datetime]:
    return [first + k * step for k in range(count)]


# --- DST: America/New_York --------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 2 * * *", [utc(2025, 3, 8, 7), utc(2025, 3, 9, 7), utc(2025, 3, 10, 6)]),
        ("30 2 * * *", [utc(2025, 3, 8, 7, 30), utc(2025, 3, 9, 7), utc(2025, 3, 10, 6, 30)]),
        # 02:00 (skipped) and 03:00 EDT are the same instant: one occurrence.
        (
            "0 2,3 * * *",
            [
                utc(2025, 3, 8, 7),
                utc(2025, 3, 8, 8),
                utc(2025, 3, 9, 7),
                utc(2025, 3, 10, 6),
                utc(2025, 3, 10, 7),
            ],
        ),
        # Four skipped times of one job collapse into the jump.
        (
            "0,15,30,45 2 * * *",
            [
                *series(utc(2025, 3, 8, 7), timedelta(minutes=15), 4),
                utc(2025, 3, 9, 7),
                *series(utc(2025, 3, 10, 6), timedelta(minutes=15), 4),
            ],
        ),
    ],
)
def test_new_york_spring_forward_fixed_time_fires_once_at_the_jump(
    expression: str, expected: list[datetime]
) -> None:
    schedule = cron_schedule(expression, NY)
    assert schedule.occurrences(utc(2025, 3, 8), utc(2025, 3, 11)) == expected


def test_new_york_fall_back_fixed_time_fires_at_first_occurrence_only() -> None:
    schedule = cron_schedule("30 1 * * *", NY)
    assert schedule.occurrences(utc(2025, 11, 1), utc(2025, 11, 4)) == [
        utc(2025, 11, 1, 5, 30),
        utc(2025, 11, 2, 5, 30),  # 01:30 EDT; 01:30 EST (06:30Z) does not fire
        utc(2025, 11, 3, 6, 30),
    ]


def test_new_york_hourly_fires_every_real_hour_23_then_25_times() -> None:
    hourly = cron_schedule("0 * * * *", NY)
    spring = hourly.occurrences(*local_day(NY, 2025, 3, 9))
    fall = hourly.occurrences(*local_day(NY, 2025, 11, 2))
    assert spring == series(utc(2025, 3, 9, 5), HOUR, 23)
    assert fall == series(utc(2025, 11, 2, 4), HOUR, 25)


def test_new_york_every_15_minutes_fires_8_times_in_the_repeated_hour() -> None:
    schedule = cron_schedule("*/15 * * * *", NY)
    # 01:00 EDT (05:00Z) up to, not including, 02:00 EST (07:00Z).
    repeated = schedule.occurrences(utc(2025, 11, 2, 5) - TICK, utc(2025, 11, 2, 7) - TICK)
    assert repeated == series(utc(2025, 11, 2, 5), timedelta(minutes=15), 8)
    walls = [t.astimezone(ZoneInfo(NY)).strftime("%H:%M%Z") for t in repeated[3:5]]
    assert walls == ["01:45EDT", "01:00EST"]  # true chronological order


def test_fixed_time_every_15_minutes_in_one_hour_is_not_repeated_in_the_fold() -> None:
    schedule = cron_schedule("*/15 1 * * *", NY)  # minute starts with * -> wildcard job
    fixed = cron_schedule("0,15,30,45 1 * * *", NY)  # fixed-time job
    window = (utc(2025, 11, 2), utc(2025, 11, 2, 12))
    assert schedule.occurrences(*window) == series(utc(2025, 11, 2, 5), timedelta(minutes=15), 8)
    assert fixed.occurrences(*window) == series(utc(2025, 11, 2, 5), timedelta(minutes=15), 4)


def test_next_after_inside_the_fold_finds_the_second_pass() -> None:
    hourly = cron_schedule("0 * * * *", NY)
    # At 01:30 EDT the next hourly firing is 01:00 EST, a wall time already passed.
    assert hourly.next_after(utc(2025, 11, 2, 5, 30)) == utc(2025, 11, 2, 6)
    assert hourly.next_after(utc(2025, 11, 2, 6, 30)) == utc(2025, 11, 2, 7)
    daily = cron_schedule("30 1 * * *", NY)
    assert daily.next_after(utc(2025, 11, 2, 5, 30)) == utc(2025, 11, 3, 6, 30)


def test_next_after_around_the_gap() -> None:
    schedule = cron_schedule("0 2 * * *", NY)
    assert schedule.next_after(utc(2025, 3, 9, 6, 59, 59)) == utc(2025, 3, 9, 7)
    assert schedule.next_after(utc(2025, 3, 9, 7)) == utc(2025, 3, 10, 6)
    hourly = cron_schedule("0 * * * *", NY)
    assert hourly.next_after(utc(2025, 3, 9, 6, 30)) == utc(2025, 3, 9, 7)  # 01:30 -> 03:00


# --- DST: Europe/Berlin and Australia/Lord_Howe ----------------------------------------------


def test_berlin_spring_forward() -> None:
    schedule = cron_schedule("30 2 * * *", BERLIN)
    assert schedule.occurrences(utc(2025, 3, 28, 12), utc(2025, 3, 31, 12)) == [
        utc(2025, 3, 29, 1, 30),
        utc(2025, 3, 30, 1),  # 03:00 CEST, the jump
        utc(2025, 3, 31, 0, 30),
    ]
    hourly = cron_schedule("0 * * * *", BERLIN)
    assert hourly.occurrences(*local_day(BERLIN, 2025, 3, 30)) == series(
        utc(2025, 3, 29, 23), HOUR, 23
    )


def test_berlin_fall_back() -> None:
    schedule = cron_schedule("30 2 * * *", BERLIN)
    assert schedule.occurrences(utc(2025, 10, 24, 12), utc(2025, 10, 27, 12)) == [
        utc(2025, 10, 25, 0, 30),
        utc(2025, 10, 26, 0, 30),  # 02:30 CEST; 02:30 CET (01:30Z) does not fire
        utc(2025, 10, 27, 1, 30),
    ]
    hourly = cron_schedule("0 * * * *", BERLIN)
    assert hourly.occurrences(*local_day(BERLIN, 2025, 10, 26)) == series(
        utc(2025, 10, 25, 22), HOUR, 25
    )


def test_lord_howe_half_hour_spring_forward() -> None:
    # 2025-10-05 02:00 +10:30 -> 02:30 +11:00, at 15:30Z on the 4th.
    schedule = cron_schedule("15 2 * * *", LORD_HOWE)
    assert schedule.occurrences(utc(2025, 10, 3), utc(2025, 10, 6)) == [
        utc(2025, 10, 3, 15, 45),
        utc(2025, 10, 4, 15, 30),  # the jump, 02:30 local
        utc(2025, 10, 5, 15, 15),
    ]
    half_hourly = cron_schedule("*/30 * * * *", LORD_HOWE)
    assert half_hourly.occurrences(utc(2025, 10, 4, 14, 59), utc(2025, 10, 4, 16)) == [
        utc(2025, 10, 4, 15),  # 01:30 +10:30
        utc(2025, 10, 4, 15, 30),  # 02:30 +11:00; 02:00 never happened
        utc(2025, 10, 4, 16),
    ]
    hourly = cron_schedule("0 * * * *", LORD_HOWE)
    assert len(hourly.occurrences(*local_day(LORD_HOWE, 2025, 10, 5))) == 23


def test_lord_howe_half_hour_fall_back() -> None:
    # 2025-04-06 02:00 +11:00 -> 01:30 +10:30, at 15:00Z on the 5th.
    schedule = cron_schedule("45 1 * * *", LORD_HOWE)
    assert schedule.occurrences(utc(2025, 4, 4), utc(2025, 4, 7)) == [
        utc(2025, 4, 4, 14, 45),
        utc(2025, 4, 5, 14, 45),  # first 01:45 only
        utc(2025, 4, 6, 15, 15),
    ]
    half_hourly = cron_schedule("*/30 * * * *", LORD_HOWE)
    assert half_hourly.occurrences(utc(2025, 4, 5, 13, 59), utc(2025, 4, 5, 15, 30)) == series(
        utc(2025, 4, 5, 14), timedelta(minutes=30), 4
    )  # 01:00, 01:30 (+11), 01:30 (+10:30), 02:00
    hourly = cron_schedule("0 * * * *", LORD_HOWE)
    assert len(hourly.occurrences(*local_day(LORD_HOWE, 2025, 4, 6))) == 24  # 01:00 not repeated


# --- agreement with plain croniter where there is no DST -------------------------------------


@pytest.mark.parametrize("zone", ["UTC", "Etc/GMT+5", "Asia/Kolkata"])
@pytest.mark.parametrize(
    "expression",
    [
        "0 * * * *",
        "*/7 */5 * * *",
        "0 9 * * 1-5",
        "30 2 1,15 * *",
        "0 0 1 * 1",  # day-of-month OR day-of-week
        "0 12 L * *",
        "0 0 * * 5#3",
        "0 8 1W * *",
        "5 4 * 2-5 sun",
    ],
)
def test_without_dst_matches_croniter(zone: str, expression: str) -> None:
    tz = ZoneInfo(zone)
    start = utc(2024, 12, 30, 13, 7, 30)
    end = start + timedelta(days=40)
    itr = croniter(expression, start.astimezone(tz))
    expected = []
    while (fire := itr.get_next(datetime).astimezone(UTC)) <= end:
        expected.append(fire)
    schedule = cron_schedule(expression, zone)
    assert schedule.occurrences(start, end) == expected
    assert schedule.next_after(start) == expected[0]


# --- aliases, normalisation, description -----------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "expanded", "fixed"),
    [
        ("@yearly", "0 0 1 1 *", True),
        ("@annually", "0 0 1 1 *", True),
        ("@monthly", "0 0 1 * *", True),
        ("@weekly", "0 0 * * 0", True),
        ("@daily", "0 0 * * *", True),
        ("@midnight", "0 0 * * *", True),
        ("@hourly", "0 * * * *", False),
        ("  @DAILY ", "0 0 * * *", True),
    ],
)
def test_aliases(alias: str, expanded: str, fixed: bool) -> None:
    assert validate_cron(alias) == expanded
    schedule = cron_schedule(alias, BERLIN)
    assert schedule.expression == expanded
    assert schedule.fixed_time is fixed
    assert schedule == cron_schedule(expanded, BERLIN)
    assert describe_cron(alias) == describe_cron(expanded)


def test_daily_alias_fires_at_local_midnight() -> None:
    schedule = cron_schedule("@daily", NY)
    assert schedule.occurrences(utc(2025, 1, 1), utc(2025, 1, 3)) == [
        utc(2025, 1, 1, 5),
        utc(2025, 1, 2, 5),
    ]


@pytest.mark.parametrize(
    ("expression", "fixed"),
    [
        ("0 2 * * *", True),
        ("30 1 * * *", True),
        ("0 9 * * 1-5", True),
        ("15 3,15 * * *", True),
        ("0 * * * *", False),
        ("*/15 * * * *", False),
        ("0 */2 * * *", False),
        ("* 2 * * *", False),
    ],
)
def test_fixed_time_flag_follows_cronie(expression: str, fixed: bool) -> None:
    assert cron_schedule(expression).fixed_time is fixed


def test_validate_cron_normalises_whitespace() -> None:
    assert validate_cron("  0\t9  *   * 1-5 ") == "0 9 * * 1-5"
    assert cron_schedule(" 0  9 * * 1-5", " Europe/Berlin").timezone == BERLIN


@pytest.mark.parametrize(
    ("expression", "description"),
    [
        ("0 9 * * 1-5", "At 09:00, Monday through Friday"),
        ("30 14 * * *", "At 14:30"),
        ("@daily", "At 00:00"),
        ("@hourly", "Every hour"),
        ("*/15 * * * *", "Every 15 minutes"),
    ],
)
def test_describe_cron(expression: str, description: str) -> None:
    assert describe_cron(expression) == description


def test_describe_cron_rejects_invalid() -> None:
    with pytest.raises(InvalidSchedule, match="out of range"):
        describe_cron("61 * * * *")


# --- validation messages ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 * * * *", r"cron expression '61 \* \* \* \*': minute 61 out of range 0-59"),
        ("0 24 * * *", r"hour 24 out of range 0-23"),
        ("0 0 32 * *", r"day of month 32 out of range 1-31"),
        ("0 0 1 13 *", r"month 13 out of range 1-12"),
        ("0 0 * * 8", r"day of week 8 out of range 0-7"),
        ("*/0 * * * *", r"minute step '0' must be a positive number"),
        ("0 0 30 2 *", r"'0 0 30 2 \*': never fires"),
        ("0 0 31 4,6 *", r"never fires"),
        ("0 0 * * * *", r"has 6 fields, expected 5"),
        ("0 0 * * * * 2025", r"has 7 fields, expected 5"),
        ("0 0 *", r"has 3 fields, expected 5"),
        ("@reboot", r"'@reboot': unsupported alias"),
        ("@often", r"unsupported alias"),
        ("H * * * *", r"minute 'H' uses hashed/random"),
        ("0 H(0-5) * * *", r"hour 'H\(0-5\)' uses hashed/random"),
        ("R 0 * * *", r"hashed/random"),
        ("", r"cron expression is empty"),
        ("   ", r"cron expression is empty"),
        ("abc * * * *", r"cron expression 'abc \* \* \* \*'"),
        ("0 0 * foo *", r"cron expression '0 0 \* foo \*'"),
    ],
)
def test_validate_cron_rejects(expression: str, message: str) -> None:
    with pytest.raises(InvalidSchedule, match=message):
        validate_cron(expression)
    with pytest.raises(InvalidSchedule, match=message):
        cron_schedule(expression)


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "America", "../etc/passwd", "localtime"])
def test_parse_timezone_rejects(name: str) -> None:
    with pytest.raises(InvalidSchedule, match=r"unknown timezone"):
        parse_timezone(name)
    with pytest.raises(InvalidSchedule, match=r"unknown timezone"):
        cron_schedule("0 0 * * *", name)


def test_parse_timezone_message_names_the_zone() -> None:
    with pytest.raises(InvalidSchedule, match=r"^unknown timezone 'Mars/Olympus'$"):
        parse_timezone("Mars/Olympus")
    assert parse_timezone("Europe/Berlin") == ZoneInfo("Europe/Berlin")


def test_invalid_schedule_is_a_value_error() -> None:
    assert issubclass(InvalidSchedule, ValueError)


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2025, 1, 1)
    schedule = cron_schedule("0 0 * * *")
    with pytest.raises(ValueError, match="naive"):
        schedule.next_after(naive)
    with pytest.raises(ValueError, match="naive"):
        schedule.occurrences(naive, utc(2025, 2, 1))
    with pytest.raises(ValueError, match="naive"):
        interval_schedule(5, naive)
    with pytest.raises(ValueError, match="naive"):
        interval_schedule(5, utc(2025, 1, 1)).next_after(naive)


def test_aware_non_utc_input_is_converted_and_output_is_utc() -> None:
    schedule = cron_schedule("0 9 * * *", BERLIN)
    after = datetime(2025, 1, 1, 12, tzinfo=ZoneInfo("Asia/Tokyo"))  # 03:00Z
    fire = schedule.next_after(after)
    assert fire == utc(2025, 1, 1, 8)
    assert fire.tzinfo is UTC


def test_empty_or_reversed_window() -> None:
    schedule = cron_schedule("* * * * *")
    assert schedule.occurrences(utc(2025, 1, 1), utc(2025, 1, 1)) == []
    assert schedule.occurrences(utc(2025, 1, 2), utc(2025, 1, 1)) == []
    assert schedule.occurrences(utc(2025, 1, 1), utc(2025, 1, 1, 0, 1)) == [utc(2025, 1, 1, 0, 1)]


# --- intervals -------------------------------------------------------------------------------


ANCHOR = utc(2025, 1, 1, 0, 7, 13)


def test_interval_occurrences_come_from_the_anchor() -> None:
    schedule = interval_schedule(90, ANCHOR)
    assert schedule.next_after(ANCHOR) == ANCHOR + timedelta(minutes=90)
    assert schedule.next_after(ANCHOR - TICK) == ANCHOR
    assert schedule.next_after(utc(2024, 12, 31, 22)) == ANCHOR - timedelta(minutes=90)
    assert schedule.occurrences(ANCHOR, ANCHOR + timedelta(hours=6)) == series(
        ANCHOR + timedelta(minutes=90), timedelta(minutes=90), 4
    )


@settings(max_examples=60, deadline=None)
@given(
    minutes=st.integers(min_value=1, max_value=527_040),
    after=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
)
def test_interval_next_after_never_drifts(minutes: int, after: datetime) -> None:
    schedule = interval_schedule(minutes, ANCHOR)
    step = timedelta(minutes=minutes)
    fire = schedule.next_after(after)
    assert fire > after >= fire - step
    assert (fire - ANCHOR) % step == timedelta(0)
    assert schedule.occurrences(after, fire) == [fire]
    # Asking again from "now" (the fire time, or a late completion) stays on the grid.
    late = fire + timedelta(seconds=37)
    assert schedule.next_after(late) == fire + step or step <= timedelta(seconds=37)
    assert (schedule.next_after(late) - ANCHOR) % step == timedelta(0)


@pytest.mark.parametrize(
    ("minutes", "message"),
    [
        (0, "interval must be a positive number of minutes"),
        (-5, "interval must be a positive number of minutes"),
        (1.5, "interval must be a positive number of minutes"),
        (True, "interval must be a positive number of minutes"),
        ("5", "interval must be a positive number of minutes"),
        (527_041, "at most 527040 minutes"),
    ],
)
def test_interval_rejects(minutes: object, message: str) -> None:
    with pytest.raises(InvalidSchedule, match=message):
        interval_schedule(minutes, ANCHOR)  # type: ignore[arg-type]


def test_interval_is_real_time_across_dst() -> None:
    anchor = datetime(2025, 3, 9, 0, tzinfo=ZoneInfo(NY))
    schedule = interval_schedule(60, anchor)
    assert schedule.anchor == utc(2025, 3, 9, 5)
    assert schedule.occurrences(*local_day(NY, 2025, 3, 9)) == series(utc(2025, 3, 9, 5), HOUR, 23)


# --- upcoming --------------------------------------------------------------------------------


def test_upcoming_merges_and_sorts_by_time_then_key() -> None:
    schedules = [
        ("c-hourly", cron_schedule("0 * * * *")),
        ("a-half", cron_schedule("*/30 * * * *")),
        ("b-every-hour", interval_schedule(60, utc(2025, 1, 1))),
        ("d-berlin", cron_schedule("0 1 * * *", BERLIN)),
    ]
    result = upcoming(schedules, utc(2024, 12, 31, 23, 30), utc(2025, 1, 1, 1))
    assert result == [
        (utc(2025, 1, 1, 0, 0), "a-half"),
        (utc(2025, 1, 1, 0, 0), "b-every-hour"),
        (utc(2025, 1, 1, 0, 0), "c-hourly"),
        (utc(2025, 1, 1, 0, 0), "d-berlin"),  # 01:00 CET
        (utc(2025, 1, 1, 0, 30), "a-half"),
        (utc(2025, 1, 1, 1), "a-half"),
        (utc(2025, 1, 1, 1), "b-every-hour"),
        (utc(2025, 1, 1, 1), "c-hourly"),
    ]  # 23:30 itself is outside the half-open window
    assert upcoming([], utc(2025, 1, 1), utc(2025, 1, 2)) == []


def test_upcoming_over_2000_mixed_schedules_for_a_day() -> None:
    zones = ["UTC", NY, BERLIN, LORD_HOWE, "Asia/Kolkata", "America/Sao_Paulo"]
    expressions = ["0 * * * *", "*/15 * * * *", "0 9 * * 1-5", "30 2 * * *", "@daily", "0 0 1 * 1"]
    schedules: list[tuple[int, CronSchedule | IntervalSchedule]] = []
    for i in range(2000):
        if i % 5 == 0:
            schedules.append((i, interval_schedule(5 + i % 240, ANCHOR)))
        else:
            schedules.append((i, cron_schedule(expressions[i % 6], zones[i % 7 % 6])))
    start, end = utc(2025, 3, 30), utc(2025, 3, 31)  # Berlin springs forward
    result = upcoming(schedules, start, end)
    assert len(result) == sum(len(s.occurrences(start, end)) for _, s in schedules)
    assert result == sorted(result)
    assert all(start < t <= end for t, _ in result)


# --- properties ------------------------------------------------------------------------------

ZONES = ["UTC", NY, BERLIN, LORD_HOWE, "Asia/Kolkata", "America/Sao_Paulo"]


def _field(values: range, max_step: int) -> st.SearchStrategy[str]:
    lo, hi = values.start, values.stop - 1
    number = st.integers(lo, hi)
    return st.one_of(
        st.just("*"),
        st.integers(2, max_step).map(lambda k: f"*/{k}"),
        number.map(str),
        st.lists(number, min_size=2, max_size=3, unique=True).map(
            lambda xs: ",".join(map(str, sorted(xs)))
        ),
        st.tuples(number, number).map(lambda ab: f"{min(ab)}-{max(ab)}"),
        st.tuples(number, number, st.integers(2, max_step)).map(
            lambda abk: f"{min(abk[:2])}-{max(abk[:2])}/{abk[2]}"
        ),
    )


# Hours 0-3 and 23 are over-represented: that is where DST transitions happen.
HOURS = st.one_of(_field(range(24), 8), st.sampled_from(["1", "2", "3", "2,3", "0-3", "23"]))
EXPRESSIONS = st.builds(
    lambda minute, hour, dom, dow: f"{minute} {hour} {dom} * {dow}",
    _field(range(60), 30),
    HOURS,
    st.sampled_from(["*", "*", "*", "1-15", "L"]),
    st.sampled_from(["*", "*", "1-5", "0,6", "mon-fri", "sun"]),
)


@cache
def transitions(zone: str) -> tuple[datetime, ...]:
    """UTC instants in 2024-2026 at which the zone's offset changes."""
    tz = ZoneInfo(zone)
    found = []
    day = utc(2024, 1, 1)
    while day < utc(2027, 1, 1):
        nxt = day + timedelta(days=1)
        if day.astimezone(tz).utcoffset() != nxt.astimezone(tz).utcoffset():
            lo, hi = day, nxt
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                if mid.astimezone(tz).utcoffset() == lo.astimezone(tz).utcoffset():
                    lo = mid
                else:
                    hi = mid
            found.append(hi.replace(second=0, microsecond=0))
        day = nxt
    return tuple(found)


@st.composite
def instants_near_dst(draw: st.DrawFn, zone: str) -> datetime:
    """A random instant in 2024-2026, usually within a few hours of a DST change."""
    near = transitions(zone)
    if near and draw(st.booleans()):
        base = draw(st.sampled_from(near))
        return base + timedelta(seconds=draw(st.integers(-5 * 3600, 5 * 3600)))
    return draw(st.datetimes(datetime(2024, 1, 1), datetime(2026, 12, 31), timezones=st.just(UTC)))


@st.composite
def cases(draw: st.DrawFn) -> tuple[CronSchedule, datetime]:
    zone = draw(st.sampled_from(ZONES))
    return cron_schedule(draw(EXPRESSIONS), zone), draw(instants_near_dst(zone))


PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(cases())
def test_next_after_is_later_and_agrees_with_occurrences(case: tuple[CronSchedule, datetime]):
    schedule, after = case
    fire = schedule.next_after(after)
    assert fire > after
    assert fire.tzinfo is UTC
    assert schedule.occurrences(after, fire) == [fire]
    assert schedule.occurrences(after, fire - TICK) == []


@PROPERTY
@given(cases(), st.integers(1, 30))
def test_occurrences_chain_and_split(case: tuple[CronSchedule, datetime], hours: int) -> None:
    schedule, start = case
    end = start + timedelta(hours=hours)
    fires = schedule.occurrences(start, end)
    assert all(a < b for a, b in pairwise(fires))
    assert all(start < t <= end for t in fires)
    cursor = start
    for fire in fires:  # next_after walks exactly the same instants
        assert schedule.next_after(cursor) == fire
        cursor = fire
    assert schedule.next_after(cursor) > end
    middle = start + (end - start) / 3
    assert schedule.occurrences(start, middle) + schedule.occurrences(middle, end) == fires


def brute_force(schedule: CronSchedule, start: datetime, end: datetime) -> list[datetime]:
    """Every UTC minute in (start, end] checked against the rules, independently.

    croniter (naive) lists matching wall times; a minute fires when its wall time
    matches (only the first pass of a fold for fixed-time jobs), and for fixed-time jobs
    a DST jump fires when any skipped wall time matches.
    """
    tz = schedule.zone
    wall_start = start.astimezone(tz).replace(tzinfo=None) - timedelta(hours=3)
    wall_end = end.astimezone(tz).replace(tzinfo=None) + timedelta(hours=3)
    itr = croniter(schedule.expression, wall_start)
    walls = set()
    while (wall := itr.get_next(datetime)) <= wall_end:
        walls.add(wall)
    fires = set()
    minute = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while minute <= end:
        local = minute.astimezone(tz)
        if local.replace(tzinfo=None, fold=0) in walls and not (schedule.fixed_time and local.fold):
            fires.add(minute)
        before = (minute - timedelta(seconds=1)).astimezone(tz).utcoffset()
        jump = local.utcoffset() - before  # type: ignore[operator]
        if schedule.fixed_time and jump > timedelta(0):
            skipped = local.replace(tzinfo=None) - jump
            while skipped < local.replace(tzinfo=None):
                if skipped in walls:
                    fires.add(minute)
                skipped += timedelta(minutes=1)
        minute += timedelta(minutes=1)
    return sorted(fires)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_occurrences_match_a_brute_force_minute_scan(case: tuple[CronSchedule, datetime]):
    schedule, start = case
    end = start + timedelta(hours=4)
    assert schedule.occurrences(start, end) == brute_force(schedule, start, end)


@PROPERTY
@given(cases())
def test_fixed_time_jobs_fire_in_the_first_pass_and_wildcards_only_on_matches(
    case: tuple[CronSchedule, datetime],
) -> None:
    schedule, start = case
    for fire in schedule.occurrences(start, start + timedelta(hours=8))[:40]:
        local = fire.astimezone(schedule.zone)
        matches = croniter.match(schedule.expression, local.replace(tzinfo=None))
        at_jump = (fire - TICK).astimezone(schedule.zone).utcoffset() != local.utcoffset()
        if schedule.fixed_time:
            assert local.fold == 0
            assert matches or at_jump
        else:
            assert matches


@PROPERTY
@given(
    st.integers(0, 59),
    st.sampled_from([0, 1, 2, 3, 12, 23]),
    st.sampled_from(ZONES).flatmap(lambda zone: st.tuples(st.just(zone), instants_near_dst(zone))),
)
def test_daily_fixed_time_job_fires_once_a_day(
    minute: int, hour: int, zone_and_start: tuple[str, datetime]
) -> None:
    zone, start = zone_and_start
    schedule = cron_schedule(f"{minute} {hour} * * *", zone)
    fires = schedule.occurrences(start, start + timedelta(days=4))
    assert 3 <= len(fires) <= 5  # 96 hours hold five 23-hour spacings at most
    for a, b in pairwise(fires):
        assert timedelta(hours=23) <= b - a <= timedelta(hours=25)
    days = [t.astimezone(schedule.zone).date() for t in fires]
    assert len(set(days)) == len(days)
