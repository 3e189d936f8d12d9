"""Dates of birth in the formats hospitals send, with day/month swaps kept detectable."""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import lru_cache

from medmatch.errors import InvalidValueError

EARLIEST_BIRTH = date(1880, 1, 1)

# Tried in order. Slash dates are read month-first (US), and day-first only when the first
# number cannot be a month; the comparison's day/month-swap level catches the rest.
_FORMATS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"), "ymd"),
    (re.compile(r"^(\d{4})(\d{2})(\d{2})$"), "ymd"),
    (re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"), "ymd"),
    (re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$"), "mdy"),
    (re.compile(r"^(\d{1,2})-(\d{1,2})-(\d{4})$"), "mdy"),
    (re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$"), "dmy"),
)
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_TEXT_DATE = re.compile(
    r"^(\d{1,2})\s+([a-z]{3})[a-z]*\.?\s+(\d{4})$|^([a-z]{3})[a-z]*\.?\s+(\d{1,2}),?\s+(\d{4})$"
)


def _build(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise InvalidValueError("not a calendar date") from None


@lru_cache(maxsize=200_000)
def parse_date_of_birth(text: str | date | None, today: date | None = None) -> date | None:
    """Parse a date of birth; None for empty input, InvalidValueError for a bad one."""
    if text is None:
        return None
    if isinstance(text, datetime):
        parsed = text.date()
    elif isinstance(text, date):
        parsed = text
    else:
        raw = text.strip().lower()
        if not raw:
            return None
        raw = raw.split("t")[0] if re.match(r"^\d{4}-\d{2}-\d{2}t", raw) else raw
        parsed = _parse_text(raw)
    limit = today or date.today()
    if parsed > limit:
        raise InvalidValueError("in the future")
    if parsed < EARLIEST_BIRTH:
        raise InvalidValueError("before 1880")
    return parsed


def _parse_text(raw: str) -> date:
    for pattern, order in _FORMATS:
        match = pattern.match(raw)
        if not match:
            continue
        a, b, c = (int(g) for g in match.groups())
        if order == "ymd":
            return _build(a, b, c)
        if order == "dmy":
            return _build(c, b, a)
        # month-first, unless the first number cannot be a month
        if a > 12 >= b:
            return _build(c, b, a)
        return _build(c, a, b)
    match = _TEXT_DATE.match(raw)
    if match:
        g = match.groups()
        day, mon, year = (g[0], g[1], g[2]) if g[0] else (g[4], g[3], g[5])
        if mon[:3] in _MONTHS:
            return _build(int(year), _MONTHS[mon[:3]], int(day))
    raise InvalidValueError("unrecognised date format")


def iso_day_month_swapped(a: str, b: str) -> bool:
    """ISO date strings with the same year and day and month exchanged (true for equal dates
    whose day is their month, as the SQL rendering of the comparison level is)."""
    return a[:4] == b[:4] and a[5:7] == b[8:10] and a[8:10] == b[5:7]


def is_day_month_swap(a: date, b: date) -> bool:
    """True when b is a with day and month exchanged (and they differ)."""
    return a != b and a.year == b.year and a.month == b.day and a.day == b.month
