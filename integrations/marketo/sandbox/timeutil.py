"""Datetime formats used by the two Marketo API families.

The Lead Database API prints UTC datetimes as `2026-05-04T15:40:02Z`. The
Asset API appends an offset after the `Z` (`2015-05-21T22:45:13Z+0000`), which
is not strict ISO 8601 but is what Marketo's asset responses show.
"""

from datetime import datetime, timedelta, timezone, tzinfo


def to_datetime(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, tz=timezone.utc)


def format_lead_datetime(epoch_seconds: float) -> str:
    return to_datetime(epoch_seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_asset_datetime(epoch_seconds: float) -> str:
    return to_datetime(epoch_seconds).strftime("%Y-%m-%dT%H:%M:%SZ+0000")


def parse_datetime(text: str) -> float | None:
    """Parse an ISO 8601 datetime into epoch seconds, or return None if invalid.

    A value without an offset is read as UTC, because Marketo's field-type
    page only recommends including one.
    """
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def parse_date(text: str) -> bool:
    """Return whether `text` is a `YYYY-MM-DD` date."""
    try:
        datetime.strptime(text, "%Y-%m-%d")
    except (TypeError, ValueError):
        return False
    return True


def quota_timezone(variant: str) -> tzinfo:
    """Return the time zone whose midnight resets the daily quota.

    Marketo documents the reset as "12:00 AM CST" without stating whether
    that follows US Central daylight saving. "America/Chicago" follows it and
    "UTC-06:00" does not.
    """
    if variant == "America/Chicago":
        try:
            from zoneinfo import ZoneInfo

            return ZoneInfo("America/Chicago")
        except (ImportError, LookupError):
            # NOTE: without a time zone database the sandbox falls back to a
            # fixed UTC-6, so daylight saving is ignored on such hosts.
            pass
    return timezone(timedelta(hours=-6))


def quota_day(epoch_seconds: float, variant: str) -> str:
    """Return the quota day (`YYYY-MM-DD`) that a call at `epoch_seconds` counts against."""
    return to_datetime(epoch_seconds).astimezone(quota_timezone(variant)).strftime("%Y-%m-%d")
