"""Marketo's call limits: rate window, concurrency, daily quota, and usage counts.

Marketo allows 100 calls per 20 seconds and 10 calls in flight per instance,
shared by all API users, and usually 50,000 calls a day, resetting at
midnight US Central. Usage and error counts are kept per API user per day for
the `/rest/v1/stats/...` endpoints, and a call log records when each call
started and ended, so tests can check windows and concurrency.
"""

import itertools
import threading
from collections import Counter, defaultdict, deque
from dataclasses import asdict, dataclass, fields
from datetime import date, timedelta

from .errors import MESSAGES
from .timeutil import quota_day

# Entries kept in the call log; the oldest are dropped first.
CALL_LOG_MAX_ENTRIES = 100_000


@dataclass
class LimitSettings:
    rate_limit_calls: int = 100
    rate_window_seconds: float = 20.0
    max_concurrent: int = 10
    daily_quota: int = 50000
    token_ttl_seconds: float = 3600

    def update(self, changes: dict) -> list[str]:
        """Apply `changes` and return one message per invalid entry (nothing changes if any is invalid)."""
        known = {field.name for field in fields(self)}
        problems = []
        for name, value in changes.items():
            if name not in known:
                problems.append(f"Unknown limit {name!r}; known limits: {', '.join(sorted(known))}.")
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                problems.append(f"Limit {name!r} must be a positive number, not {value!r}.")
        if not problems:
            for name, value in changes.items():
                setattr(self, name, value)
        return problems

    def as_dict(self) -> dict:
        return asdict(self)


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


class CallLimiter:
    """Admission control and usage accounting for counted `/rest` calls."""

    def __init__(self, settings: LimitSettings, clock, variants: dict):
        self.settings = settings
        self._clock = clock
        self._variants = variants
        self._lock = threading.Lock()
        self._window = deque()
        self._in_flight = 0
        # {day: Counter(user -> calls)} and {day: Counter(code -> count)}.
        self.calls_by_day = defaultdict(Counter)
        self.errors_by_day = defaultdict(Counter)
        self.calls_by_path = Counter()
        # One entry per /rest call that reached the limits, rejected ones included.
        self._call_log = deque(maxlen=CALL_LOG_MAX_ENTRIES)
        self._open_calls = {}
        self._call_ids = itertools.count(1)

    def today(self) -> str:
        return quota_day(self._clock(), self._variants["quota_timezone"])

    def admit(self, user: str, path: str) -> tuple[str, str] | None:
        """Count one call by `user` and return `(code, message)` if a limit rejects it.

        An admitted call occupies a concurrency slot until `release` is called.
        Checks run in the order quota (607), rate (606), concurrency (615).
        """
        return self.start_call(user, path)[0]

    def start_call(self, user: str, path: str) -> tuple[tuple[str, str] | None, int]:
        """Admit one call as `admit` does, and return the rejection with the call's id in the call log.

        Pass the id to `release` so the log records when the call ended.
        """
        with self._lock:
            now = self._clock()
            day = self.today()
            settings = self.settings
            while self._window and self._window[0] <= now - settings.rate_window_seconds:
                self._window.popleft()

            rejection = None
            if sum(self.calls_by_day[day].values()) >= settings.daily_quota:
                rejection = ("607", MESSAGES["607"])
            elif len(self._window) >= settings.rate_limit_calls:
                message = MESSAGES["606"].format(
                    calls=settings.rate_limit_calls, seconds=_format_seconds(settings.rate_window_seconds)
                )
                rejection = ("606", message)
            elif self._in_flight >= settings.max_concurrent:
                rejection = ("615", MESSAGES["615"])

            if rejection is None or self._variants["rejected_calls_count"] == "count":
                self._window.append(now)
                self.calls_by_day[day][user] += 1
                self.calls_by_path[path] += 1
            if rejection is None:
                self._in_flight += 1

            call_id = next(self._call_ids)
            entry = {
                "id": call_id,
                "user": user,
                "path": path,
                "started_at": now,
                "finished_at": None if rejection is None else now,
                "rejected_with": rejection[0] if rejection else None,
            }
            self._call_log.append(entry)
            if rejection is None:
                self._open_calls[call_id] = entry
            return rejection, call_id

    def refund(self, user: str, path: str) -> None:
        """Take back one admitted call that ended with a code that does not count (604, 608, 611)."""
        with self._lock:
            day = self.today()
            if self.calls_by_day[day][user] > 0:
                self.calls_by_day[day][user] -= 1
            if self.calls_by_path[path] > 0:
                self.calls_by_path[path] -= 1
            if self._window:
                self._window.pop()

    def release(self, call_id: int | None = None) -> None:
        """Free an admitted call's concurrency slot; with its id, log when it ended."""
        with self._lock:
            self._in_flight -= 1
            entry = self._open_calls.pop(call_id, None)
            if entry is not None:
                entry["finished_at"] = self._clock()

    def call_log(self) -> list[dict]:
        """Return a copy of the call log, oldest first: start and end (epoch seconds), path, user, rejection code."""
        with self._lock:
            return [dict(entry) for entry in self._call_log]

    def record_error(self, code: str) -> None:
        with self._lock:
            self.errors_by_day[self.today()][code] += 1

    def usage(self, days: int) -> list[dict]:
        """Return usage rows for the last `days` quota days, oldest first."""
        with self._lock:
            rows = []
            for day in self._days(days):
                users = self.calls_by_day.get(day, Counter())
                rows.append({
                    "date": day,
                    "total": sum(users.values()),
                    "users": [{"userId": user, "count": count} for user, count in sorted(users.items())],
                })
            return rows

    def error_usage(self, days: int) -> list[dict]:
        """Return error-count rows for the last `days` quota days, oldest first."""
        with self._lock:
            rows = []
            for day in self._days(days):
                codes = self.errors_by_day.get(day, Counter())
                rows.append({
                    "date": day,
                    "total": sum(codes.values()),
                    "errors": [{"errorCode": code, "count": count} for code, count in sorted(codes.items())],
                })
            return rows

    def _days(self, days: int) -> list[str]:
        today = date.fromisoformat(self.today())
        return [(today - timedelta(days=offset)).isoformat() for offset in range(days - 1, -1, -1)]

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "in_flight": self._in_flight,
                "calls_in_window": len(self._window),
                "calls_by_day": {day: dict(users) for day, users in self.calls_by_day.items()},
                "errors_by_day": {day: dict(codes) for day, codes in self.errors_by_day.items()},
                "calls_by_path": dict(self.calls_by_path),
            }
