"""The recording deadline: 10 working days after the activity ends (志愿服务记录与证明出具办法, art. 8).

Working days are China's official ones (weekends, public holidays and the swapped working weekends),
from the maintained `chinese_calendar` package. For a year it has no data for yet (the State Council
publishes each year's schedule in November), the rule falls back to Monday to Friday.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

from youthlink.config import get_settings


def is_working_day(day: date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:  # a year the calendar has no official schedule for yet
        return day.weekday() < 5


def add_working_days(start: date, count: int) -> date:
    """The `count`-th working day after `start` (not counting `start` itself)."""
    day, left = start, count
    while left > 0:
        day += timedelta(days=1)
        if is_working_day(day):
            left -= 1
    return day


def working_days_until(today: date, due: date) -> int:
    """Working days left from `today` (exclusive) to `due` (inclusive); negative when past due."""
    if due < today:
        return -sum(1 for n in range(1, (today - due).days + 1) if is_working_day(due + timedelta(days=n)))
    return sum(1 for n in range(1, (due - today).days + 1) if is_working_day(today + timedelta(days=n)))


def due_on(activity_ended: date) -> date:
    return add_working_days(activity_ended, get_settings().hours_deadline_working_days)


def local_date(moment: datetime) -> date:
    return moment.astimezone(ZoneInfo(get_settings().city_timezone)).date()


def today() -> date:
    return local_date(datetime.now(UTC))


def is_due_soon(due: date, on: date | None = None) -> bool:
    """Still within the deadline, with at most the warning number of working days left."""
    on = on or today()
    return due >= on and working_days_until(on, due) <= get_settings().hours_deadline_warning_days


def warning_horizon(on: date) -> date:
    """The last due date that counts as "due soon" on `on`."""
    return add_working_days(on, get_settings().hours_deadline_warning_days)
