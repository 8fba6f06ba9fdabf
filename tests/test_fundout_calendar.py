"""When configurations are due: hourly slots in UTC, schedules local to their zone across DST changes,
weekly days with 0 = Sunday, month-end for M, half-hour zones."""

from datetime import UTC, datetime, timedelta

import pytest

from ops_pipeline.fundout.calendar import is_due, slot_of


def due_slots(freq, day, hour, tz, start, hours):
    """Every slot in [start, start + hours) the configuration is due in."""
    first = datetime.fromisoformat(start).astimezone(UTC)
    return [s.isoformat() for s in (first + timedelta(hours=h) for h in range(hours))
            if is_due(freq, day, hour, tz, s)]


def test_slot_is_the_utc_hour():
    at = datetime.fromisoformat("2026-11-21T10:59:59.999+05:30")
    assert slot_of(at) == datetime(2026, 11, 21, 5, tzinfo=UTC)


def test_hourly_is_due_every_slot():
    assert len(due_slots("H", None, 22, "Europe/Paris", "2026-03-28T00:00Z", 72)) == 72


def test_daily_runs_once_per_local_day_across_both_dst_changes():
    # Europe/Paris: 2026-03-29 02:00 -> 03:00; 2026-10-25 03:00 -> 02:00.
    spring = due_slots("D", None, 22, "Europe/Paris", "2026-03-27T00:00Z", 24 * 4)
    assert spring == ["2026-03-27T21:00:00+00:00", "2026-03-28T21:00:00+00:00", "2026-03-29T20:00:00+00:00",
                      "2026-03-30T20:00:00+00:00"]
    autumn = due_slots("D", None, 22, "Europe/Paris", "2026-10-24T00:00Z", 24 * 3)
    assert autumn == ["2026-10-24T20:00:00+00:00", "2026-10-25T21:00:00+00:00", "2026-10-26T21:00:00+00:00"]


def test_a_skipped_wall_time_runs_at_the_next_hour_and_a_repeated_one_runs_once():
    # America/New_York: 2026-03-08 02:00 does not exist; 2026-11-01 01:00 happens twice.
    spring = due_slots("D", None, 2, "America/New_York", "2026-03-07T12:00Z", 48)
    assert spring == ["2026-03-08T07:00:00+00:00", "2026-03-09T06:00:00+00:00"]  # 03:00 EDT, then 02:00 EDT
    autumn = due_slots("D", None, 1, "America/New_York", "2026-10-31T12:00Z", 48)
    # 01:00 EDT on the 1st, not again at 01:00 EST an hour later; then 01:00 EST on the 2nd.
    assert autumn == ["2026-11-01T05:00:00+00:00", "2026-11-02T06:00:00+00:00"]


def test_weekly_day_zero_is_sunday():
    sundays = due_slots("W", 0, 9, "UTC", "2026-11-01T00:00Z", 24 * 14)
    assert sundays == ["2026-11-01T09:00:00+00:00", "2026-11-08T09:00:00+00:00"]
    saturdays = due_slots("W", 6, 22, "UTC", "2026-11-01T00:00Z", 24 * 7)
    assert saturdays == ["2026-11-07T22:00:00+00:00"]


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (31, ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30"]),
        (30, ["2026-01-30", "2026-02-28", "2026-03-30", "2026-04-30"]),
        (29, ["2026-01-29", "2026-02-28", "2026-03-29", "2026-04-29"]),
        (1, ["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"]),
    ],
)
def test_monthly_day_past_a_short_month_means_its_last_day(day, expected):
    slots = due_slots("M", day, 12, "UTC", "2026-01-01T00:00Z", 24 * 120)
    assert [s[:10] for s in slots] == expected


def test_leap_february_takes_the_29th():
    assert [s[:10] for s in due_slots("M", 31, 0, "UTC", "2028-02-01T00:00Z", 24 * 29)] == ["2028-02-29"]


def test_half_hour_zone_runs_in_the_slot_after_the_local_hour():
    # Asia/Kolkata is UTC+05:30: 22:00 local is 16:30 UTC, so the 17:00 UTC slot (22:30 local).
    assert due_slots("D", None, 22, "Asia/Kolkata", "2026-11-21T00:00Z", 24) == ["2026-11-21T17:00:00+00:00"]


def test_local_day_differs_from_the_utc_day():
    # Pacific/Auckland (UTC+13 in November): Monday 08:00 local is Sunday 19:00 UTC.
    assert due_slots("W", 1, 8, "Pacific/Auckland", "2026-11-22T00:00Z", 48) == ["2026-11-22T19:00:00+00:00"]
