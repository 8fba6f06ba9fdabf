"""When a configuration is due: hourly slots in UTC, schedules in the configuration's own time zone.

A slot is the UTC hour a batch runs for. `H` is due in every slot. `D`, `W` and `M` run once on each
local date they name, at `hour` local time: the slot is the first one at or after that instant, so
- a wall time skipped by a DST change (02:30 on a spring-forward night) runs at the next hour that
  exists (03:00), and a wall time that occurs twice (autumn) runs the first time only;
- in zones with half-hour offsets a 22:00 schedule runs in the slot that starts after 22:00 local.
`M` with a day past the end of a short month runs on that month's last day.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

HOUR = timedelta(hours=1)


def slot_of(at: datetime) -> datetime:
    """The UTC hour containing `at` (an aware datetime)."""
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _ceil_hour(at: datetime) -> datetime:
    floor = slot_of(at)
    return floor if floor == at.astimezone(UTC) else floor + HOUR


def runs_on(freq: str, day: int | None, on: date) -> bool:
    if freq == "D":
        return True
    if freq == "W":
        return (on.weekday() + 1) % 7 == day  # 0 = Sunday
    if freq == "M":
        return on.day == min(day, calendar.monthrange(on.year, on.month)[1])
    raise ValueError(f"freq_type: {freq!r} has no run days")


def scheduled_slot(hour: int, timezone: str, on: date) -> datetime:
    """The slot of `hour` o'clock on local date `on` (fold 0: a skipped time maps past the gap)."""
    local = datetime(on.year, on.month, on.day, hour, tzinfo=ZoneInfo(timezone))
    return _ceil_hour(local)


@lru_cache(maxsize=65536)
def is_due(freq: str, day: int | None, hour: int, timezone: str, slot: datetime) -> bool:
    if freq == "H":
        return True
    local = slot.astimezone(ZoneInfo(timezone)).date()
    return any(
        runs_on(freq, day, on) and scheduled_slot(hour, timezone, on) == slot
        for on in (local, local - timedelta(days=1))
    )
