"""When scheduled jobs fire: pure time computation, no database, no I/O, no clock.

A job has at most one time trigger: a cron expression evaluated in an IANA timezone, or
an interval in minutes measured from a fixed anchor. The scheduler stores ``next_run_at``
in UTC and fires each occurrence once, so everything here takes and returns aware UTC
datetimes and answers two questions: "what is the first occurrence strictly after t?" and
"which occurrences fall in (start, end]?".

Cron expressions are evaluated in the job's local wall-clock time and then mapped to UTC,
following cronie's daylight-saving rules:

* A job is *fixed-time* when neither its minute nor its hour field starts with ``*``
  (cronie's MIN_STAR/HR_STAR flags), e.g. ``30 2 * * *``; otherwise it is a *wildcard*
  job, e.g. ``0 * * * *`` or ``*/15 * * * *``.
* Spring forward (a gap): a local time that does not exist fires a fixed-time job once,
  at the instant of the jump; several skipped times of one job collapse into that one
  occurrence. For a wildcard job a nonexistent local time simply does not occur.
* Fall back (a fold): a local time that occurs twice fires a fixed-time job once, at its
  first occurrence; a wildcard job fires at both real instants, in chronological order.

How it works: candidate local times come from the cron fields as *naive* wall-clock
datetimes (croniter decides which days match; the minute and hour lists are expanded
directly, which is much faster than one croniter step per firing). Each candidate maps to
zero, one or two UTC instants. Because the "first instant" of a candidate never decreases
as the wall-clock time increases, a scan can stop at the first candidate whose first
instant lies past the point of interest.
"""

from __future__ import annotations

import copy
import re
from bisect import bisect_left
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cron_descriptor import ExpressionDescriptor, Options
from croniter import CroniterBadDateError, CroniterError, croniter

__all__ = [
    "CronSchedule",
    "IntervalSchedule",
    "InvalidSchedule",
    "Schedule",
    "cron_schedule",
    "describe_cron",
    "interval_schedule",
    "parse_timezone",
    "upcoming",
    "validate_cron",
]

K = TypeVar("K", bound=Hashable)

ALIASES: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

# (name, lowest, highest) of the five fields, in order; day of week 7 is Sunday again.
_FIELDS: tuple[tuple[str, int, int], ...] = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
_WHITESPACE = re.compile(r"[ \t\r\n\f\v]+")
# croniter's hashed ("H") and random ("R") items: per-job or per-process values, never
# reproducible from the expression alone.
_HASHED_ITEM = re.compile(r"^[hr](?:\(|/|$)", re.IGNORECASE)

# An expression must fire within this many years of a fixed reference date, or it is
# treated as one that can never fire (``0 0 30 2 *``). Fixed so validation is pure.
_NEVER_FIRES_YEARS = 5
_NEVER_FIRES_REFERENCE = datetime(2024, 1, 1)
# Longest fall-back of any zone we support: real DST and zone shifts are under 3 hours.
_MAX_FOLD = timedelta(hours=3)
# Stop looking for a next occurrence of a wildcard job whose candidates all fall into
# DST gaps (pathological) after this much wall-clock time.
_SEARCH_LIMIT = timedelta(days=366 * (_NEVER_FIRES_YEARS + 1))
_MAX_INTERVAL_MINUTES = 527_040  # one (leap) year
_DAY = timedelta(days=1)


class InvalidSchedule(ValueError):
    """A cron expression, timezone or interval that cannot be scheduled.

    Subclasses ValueError so API and CLI layers can turn it into a 4xx/usage error; the
    message is meant for the person who wrote the schedule.
    """


class Schedule(Protocol):
    """What the scheduler needs from a time trigger, cron or interval alike."""

    def next_after(self, after: datetime) -> datetime: ...

    def occurrences(self, start: datetime, end: datetime) -> list[datetime]: ...


# --- validation ---------------------------------------------------------------------------


def parse_timezone(name: str) -> ZoneInfo:
    """Load an IANA zone, rejecting names that would depend on the host's configuration."""
    key = name.strip() if isinstance(name, str) else ""
    if not key or key.lower() == "localtime":
        raise InvalidSchedule(f"unknown timezone {name!r}")
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InvalidSchedule(f"unknown timezone {name!r}") from exc


def validate_cron(expression: str) -> str:
    """Return the normalised 5-field form of ``expression`` or raise InvalidSchedule.

    Normalising (trimmed, single spaces, aliases expanded) gives one stored spelling per
    schedule, so equal schedules compare equal and the fixed-time rule sees real fields.
    """
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidSchedule("cron expression is empty")
    fields = _WHITESPACE.split(expression.strip())
    normalised = " ".join(fields)
    if len(fields) == 1 and fields[0].startswith("@"):
        return _expand_alias(normalised)
    if len(fields) != len(_FIELDS):
        raise InvalidSchedule(
            f"cron expression {normalised!r}: has {len(fields)} fields, expected 5 "
            "(minute hour day-of-month month day-of-week; no seconds or years)"
        )
    for (name, _, _), value in zip(_FIELDS, fields, strict=True):
        _check_field(normalised, name, value)
    _check_fires(normalised)
    return normalised


def _expand_alias(alias: str) -> str:
    """Map ``@daily`` and friends to 5 fields; ``@reboot`` has no time, so it is refused."""
    try:
        return ALIASES[alias.lower()]
    except KeyError:
        known = " ".join(sorted(ALIASES))
        raise InvalidSchedule(
            f"cron expression {alias!r}: unsupported alias (use one of {known})"
        ) from None


def _check_field(expression: str, name: str, value: str) -> None:
    """Name the field and value at fault, which croniter's own messages do not."""
    lowest, highest = next((lo, hi) for n, lo, hi in _FIELDS if n == name)
    for item in value.split(","):
        if _HASHED_ITEM.match(item):
            raise InvalidSchedule(
                f"cron expression {expression!r}: {name} {item!r} uses hashed/random "
                "(H or R) syntax, which is not supported"
            )
        base, slash, step = item.partition("/")
        if slash and (not (step.isascii() and step.isdigit()) or int(step) == 0):
            raise InvalidSchedule(
                f"cron expression {expression!r}: {name} step {step!r} must be a positive number"
            )
        for part in base.split("-"):
            if (part.isascii() and part.isdigit()) and not lowest <= int(part) <= highest:
                raise InvalidSchedule(
                    f"cron expression {expression!r}: {name} {int(part)} out of range "
                    f"{lowest}-{highest}"
                )


def _check_fires(expression: str) -> None:
    """Reject what croniter rejects, and expressions that never fire (``0 0 30 2 *``)."""
    try:
        itr = croniter(
            expression,
            _NEVER_FIRES_REFERENCE,
            max_years_between_matches=_NEVER_FIRES_YEARS,
        )
    except CroniterError as exc:
        raise InvalidSchedule(f"cron expression {expression!r}: {exc}") from exc
    try:
        itr.get_next(datetime)
    except CroniterBadDateError as exc:
        raise InvalidSchedule(
            f"cron expression {expression!r}: never fires "
            f"(no matching date within {_NEVER_FIRES_YEARS} years)"
        ) from exc
    except CroniterError as exc:
        raise InvalidSchedule(f"cron expression {expression!r}: {exc}") from exc


def describe_cron(expression: str) -> str:
    """Plain-English description for the UI, e.g. "At 09:00, Monday through Friday"."""
    normalised = validate_cron(expression)
    options = Options()
    options.use_24hour_time_format = True
    try:
        return ExpressionDescriptor(normalised, options).get_description()
    except Exception:  # cron-descriptor knows less syntax than croniter; show the fields.
        return normalised


# --- helpers --------------------------------------------------------------------------


def _naive_utc(moment: datetime) -> datetime:
    """Convert an aware datetime to naive UTC, the form all arithmetic here uses.

    Naive input is refused: guessing its zone is exactly the bug this module exists to
    prevent.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: pass an aware (UTC) datetime")
    return moment.astimezone(UTC).replace(tzinfo=None)


def _aware(naive_utc: datetime) -> datetime:
    return naive_utc.replace(tzinfo=UTC)


# --- cron -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CronSchedule:
    """A cron expression in an IANA timezone; build with :func:`cron_schedule`.

    The croniter prototype, the zone and the expanded minute/hour lists are computed once,
    because the scheduler asks the same schedule for its next run over and over.
    """

    expression: str
    timezone: str = "UTC"
    zone: ZoneInfo = field(init=False, repr=False, compare=False)
    fixed_time: bool = field(init=False, repr=False, compare=False)
    _minutes_of_day: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _day_cron: croniter = field(init=False, repr=False, compare=False)
    _day_filter: Callable[[date], bool] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        normalised = validate_cron(self.expression)
        minute, hour, dom, month, dow = normalised.split(" ")
        day_cron = croniter(f"0 0 {dom} {month} {dow}", _NEVER_FIRES_REFERENCE)
        minutes, hours = croniter(normalised, _NEVER_FIRES_REFERENCE).expanded[:2]
        zone = parse_timezone(self.timezone)
        values = {
            "expression": normalised,
            "timezone": zone.key,
            "zone": zone,
            "fixed_time": not minute.startswith("*") and not hour.startswith("*"),
            "_minutes_of_day": _minutes_of_day(hours, minutes),
            "_day_cron": day_cron,
            "_day_filter": _simple_day_filter(day_cron),
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def next_after(self, after: datetime) -> datetime:
        """First occurrence strictly after ``after`` (aware UTC)."""
        target = _naive_utc(after)
        begin = self._scan_start(target)
        best: datetime | None = None
        for wall in self._candidates(begin):
            instants = self._instants(wall)
            for instant in instants:
                if instant > target and (best is None or instant < best):
                    best = instant
            if instants and instants[0] > target:
                return _aware(instants[0] if best is None else best)
            if wall - begin > _SEARCH_LIMIT:
                break
        raise ValueError(f"cron expression {self.expression!r} has no occurrence after {after}")

    def occurrences(self, start: datetime, end: datetime) -> list[datetime]:
        """Every occurrence in (start, end], ascending, each instant once."""
        low, high = _naive_utc(start), _naive_utc(end)
        if high <= low:
            return []
        stop_wall = self._wall(high) + _MAX_FOLD
        found: set[datetime] = set()
        for wall in self._candidates(self._scan_start(low)):
            instants = self._instants(wall)
            found.update(instant for instant in instants if low < instant <= high)
            if (instants and instants[0] > high) or wall > stop_wall:
                break
        return [_aware(instant) for instant in sorted(found)]

    def _wall(self, naive_utc: datetime) -> datetime:
        """Local wall-clock time (naive) of a UTC instant."""
        return _aware(naive_utc).astimezone(self.zone).replace(tzinfo=None)

    def _scan_start(self, naive_utc: datetime) -> datetime:
        """Earliest wall-clock candidate that can map to an instant after ``naive_utc``.

        Normally that is the local time of the instant itself. Inside a fold, earlier wall
        times still have their second (later) instant ahead, so back up past the fold.
        """
        wall = self._wall(naive_utc)
        if self._offsets(wall)[0] != self._offsets(wall)[1]:
            return wall - _MAX_FOLD
        return wall

    def _offsets(self, wall: datetime) -> tuple[timedelta, timedelta]:
        # ZoneInfo reads the naive wall time and its fold; no need to attach tzinfo.
        earlier = self.zone.utcoffset(wall)
        later = self.zone.utcoffset(wall.replace(fold=1))
        assert earlier is not None and later is not None  # ZoneInfo always has offsets
        return earlier, later

    def _instants(self, wall: datetime) -> tuple[datetime, ...]:
        """UTC instants (naive, ascending) at which wall-clock time ``wall`` fires the job.

        The first element never decreases as ``wall`` increases, which is what lets the
        scans above stop early.
        """
        before, after = self._offsets(wall)
        first, second = wall - before, wall - after
        if before == after:
            return (first,)
        if first < second:  # fold: the wall time happens twice
            return (first,) if self.fixed_time else (first, second)
        # gap: the wall time never happens; fixed-time jobs fire when the clock jumps.
        return (self._jump_instant(second, first),) if self.fixed_time else ()

    def _jump_instant(self, low: datetime, high: datetime) -> datetime:
        """The transition instant in (low, high]: the first existing instant after a gap.

        zoneinfo does not expose transitions, so bisect on whole seconds (tzdata
        transitions are whole seconds); gaps are rare enough that this costs nothing.
        """
        offset_before = self._offset_at(low)
        lo, hi = 0, int((high - low).total_seconds())
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._offset_at(low + timedelta(seconds=mid)) == offset_before:
                lo = mid
            else:
                hi = mid
        return low + timedelta(seconds=hi)

    def _offset_at(self, naive_utc: datetime) -> timedelta | None:
        return _aware(naive_utc).astimezone(self.zone).utcoffset()

    def _candidates(self, begin: datetime) -> Iterator[datetime]:
        """Matching naive wall-clock times >= ``begin``, ascending, forever."""
        first_day = begin.date()
        first_minute = begin.hour * 60 + begin.minute + bool(begin.second or begin.microsecond)
        for day in self._matching_days(first_day):
            midnight = datetime.combine(day, clock_time())
            skip = bisect_left(self._minutes_of_day, first_minute) if day == first_day else 0
            for minute in self._minutes_of_day[skip:]:
                yield midnight + timedelta(minutes=minute)

    def _matching_days(self, first: date) -> Iterator[date]:
        """Days on or after ``first`` whose day-of-month/month/day-of-week fields match."""
        if self._day_filter is not None:
            yield from _filtered_days(first, self._day_filter)
            return
        # A private copy: croniter iterators are stateful and the prototype is shared.
        days = copy.copy(self._day_cron)
        days.set_current(datetime.combine(first, clock_time()) - timedelta(minutes=1))
        while True:
            try:
                yield days.get_next(datetime).date()
            except CroniterBadDateError:
                return


def _filtered_days(first: date, matches: Callable[[date], bool]) -> Iterator[date]:
    day = first
    while True:
        if matches(day):
            yield day
        day += _DAY


def _minutes_of_day(hours: list[int | str], minutes: list[int | str]) -> tuple[int, ...]:
    """Sorted minutes after midnight at which the minute and hour fields both match."""
    hour_values = range(24) if hours == ["*"] else [int(h) for h in hours]
    minute_values = range(60) if minutes == ["*"] else [int(m) for m in minutes]
    return tuple(sorted(h * 60 + m for h in hour_values for m in minute_values))


def _simple_day_filter(day_cron: croniter) -> Callable[[date], bool] | None:
    """A direct day test when day-of-month is ``*`` and nothing exotic is used.

    Most jobs look like that, and testing a date is far cheaper than a croniter step.
    With a ``*`` day of month there is no day-of-month/day-of-week OR to reproduce.
    """
    dom, months, dows = day_cron.expanded[2:5]
    if dom != ["*"] or day_cron.nth_weekday_of_month or day_cron.nearest_weekday:
        return None
    if any(not isinstance(v, int) for v in (*months, *dows) if v != "*"):
        return None
    month_set = None if months == ["*"] else frozenset(int(m) for m in months)
    dow_set = None if dows == ["*"] else frozenset(int(d) % 7 for d in dows)

    def matches(day: date) -> bool:
        if month_set is not None and day.month not in month_set:
            return False
        return dow_set is None or day.isoweekday() % 7 in dow_set

    return matches


def cron_schedule(expression: str, timezone: str = "UTC") -> CronSchedule:
    """Validate and build a cron trigger (raises InvalidSchedule)."""
    return CronSchedule(expression, timezone)


# --- interval -------------------------------------------------------------------------


@dataclass(frozen=True)
class IntervalSchedule:
    """Every ``minutes`` minutes of real time, on the grid ``anchor + k * interval``.

    Computing from a fixed anchor (never from "now" or from when the last run finished)
    means a slow run or a restart cannot make the schedule drift. Real time, not wall
    time: DST changes do not move an interval job.
    """

    minutes: int
    anchor: datetime

    def __post_init__(self) -> None:
        if isinstance(self.minutes, bool) or not isinstance(self.minutes, int):
            raise InvalidSchedule("interval must be a positive number of minutes")
        if self.minutes < 1:
            raise InvalidSchedule("interval must be a positive number of minutes")
        if self.minutes > _MAX_INTERVAL_MINUTES:
            raise InvalidSchedule(
                f"interval must be at most {_MAX_INTERVAL_MINUTES} minutes (one year)"
            )
        object.__setattr__(self, "anchor", _aware(_naive_utc(self.anchor)))

    @property
    def step(self) -> timedelta:
        return timedelta(minutes=self.minutes)

    def next_after(self, after: datetime) -> datetime:
        """Smallest ``anchor + k * interval`` strictly after ``after`` (k may be negative)."""
        periods = (_aware(_naive_utc(after)) - self.anchor) // self.step + 1
        return self.anchor + periods * self.step

    def occurrences(self, start: datetime, end: datetime) -> list[datetime]:
        """Every grid instant in (start, end], ascending."""
        first = self.next_after(start)
        last = _aware(_naive_utc(end))
        if first > last:
            return []
        count = (last - first) // self.step + 1
        return [first + k * self.step for k in range(count)]


def interval_schedule(minutes: int, anchor: datetime) -> IntervalSchedule:
    """Validate and build an interval trigger (raises InvalidSchedule; ValueError if naive)."""
    return IntervalSchedule(minutes, anchor)


# --- many schedules -------------------------------------------------------------------


def upcoming(
    schedules: Iterable[tuple[K, Schedule]], start: datetime, end: datetime
) -> list[tuple[datetime, K]]:
    """Every occurrence of every schedule in (start, end], sorted by time then key.

    Each schedule is scanned once for the whole window (no per-step restarts); the runs
    are already sorted, so the final sort merges them cheaply. Keys that fire at the same
    instant must be comparable with each other (ints or strings, say).
    """
    merged: list[tuple[datetime, K]] = []
    for key, schedule in schedules:
        merged.extend((instant, key) for instant in schedule.occurrences(start, end))
    merged.sort()
    return merged
