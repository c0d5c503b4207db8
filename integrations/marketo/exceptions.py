"""Typed Marketo errors, the code-to-error mapping, and per-record results.

Marketo returns most failures with HTTP 200 and `success: false`, naming the
failure with a string code in `errors[0].code`. Each code belongs to one
action class, and each class has one exception type here:

- RETRY (606, 615, 604, 608, 611, 614, 713, 719, HTTP 5xx): MarketoRateLimitError
  or MarketoTransientError, raised once the client's retries are used up.
- TOKEN (601, 602): MarketoTokenError, raised when a fresh token fails too.
- QUOTA (607): MarketoQuotaExceededError; stop calling the instance until the
  daily reset.
- FIX (603, 605, 609, 610, 612, 613, 616, 7xx, request-wide 1xxx):
  MarketoPermissionError or MarketoRequestError; resending unchanged fails again.
- NOOP (702): not an error; the client returns an empty result.

Messages never contain secrets, tokens or query strings: they name the path,
the code and what to do next.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime

# Codes after which Marketo executed nothing and did not count the call
# against the daily quota or the rate limit.
UNCOUNTED_CODES = frozenset({"601", "602", "604", "605", "608", "611"})

# Codes that mean "nothing matched": an empty result, not a failure.
NOOP_CODES = frozenset({"702"})

# Per-record statuses that mean the record was written.
OK_STATUSES = frozenset({"created", "updated", "added", "deleted"})


class MarketoError(Exception):
    """A Marketo call failed. Attributes identify the call without exposing secrets."""

    def __init__(self, message, *, code=None, request_id=None, path=None, http_status=None):
        super().__init__(message)
        self.message = message
        self.code = None if code is None else str(code)
        self.request_id = request_id
        self.path = path
        self.http_status = http_status

    def __str__(self):
        return self.message


class MarketoCredentialsError(MarketoError):
    """Marketo's identity service rejected the client id or client secret (HTTP 401)."""


class MarketoTokenError(MarketoError):
    """An access token was rejected (601 or 602) even after fetching a fresh one."""


class MarketoPermissionError(MarketoError):
    """Access denied (603): the API user's role lacks `permission`, or an IP allowlist blocks us."""

    def __init__(self, message, *, permission=None, **context):
        super().__init__(message, **context)
        self.permission = permission


class MarketoRateLimitError(MarketoError):
    """The instance's rate (606) or concurrency (615) limit was still exceeded after retries."""

    def __init__(self, message, *, retry_after_seconds=None, **context):
        super().__init__(message, **context)
        self.retry_after_seconds = retry_after_seconds


class MarketoQuotaExceededError(MarketoError):
    """Marketo's daily API quota for the instance is used up (607)."""


class MarketoBudgetExhaustedError(MarketoError):
    """Docket's own share of the daily quota is used up; work may resume at `resume_at`."""

    def __init__(self, message, *, resume_at: datetime | None = None, **context):
        super().__init__(message, **context)
        self.resume_at = resume_at


class MarketoTransientError(MarketoError):
    """A temporary failure (timeouts, 5xx, 604, 608, 611, 614, 713, 719) that outlasted the retries."""


class MarketoOutcomeUnknownError(MarketoTransientError):
    """A non-idempotent call may or may not have been applied; check before resending it."""


class MarketoUnreachableError(MarketoTransientError):
    """The Marketo host could not be reached (DNS, connection refused or TLS failure)."""


class MarketoRequestError(MarketoError):
    """The request is wrong as built; resending it unchanged fails again."""


class MarketoPayloadTooLargeError(MarketoRequestError):
    """The request body is over Marketo's 1 MB limit; split the batch."""


class MarketoInvalidCookieError(MarketoRequestError):
    """Associate Lead rejected the Munchkin cookie value (1012)."""


# One row per Marketo code. Codes missing here fall back by range in `error_for`.
ERROR_CLASSES: dict[str, type[MarketoError]] = {
    "601": MarketoTokenError,
    "602": MarketoTokenError,
    "603": MarketoPermissionError,
    "604": MarketoTransientError,
    "605": MarketoRequestError,
    "606": MarketoRateLimitError,
    "607": MarketoQuotaExceededError,
    "608": MarketoTransientError,
    "609": MarketoRequestError,
    "610": MarketoRequestError,
    "611": MarketoTransientError,
    "612": MarketoRequestError,
    "613": MarketoRequestError,
    "614": MarketoTransientError,
    "615": MarketoRateLimitError,
    "616": MarketoRequestError,
    "701": MarketoRequestError,
    "703": MarketoRequestError,
    "704": MarketoRequestError,
    "709": MarketoRequestError,
    "710": MarketoRequestError,
    "711": MarketoRequestError,
    "712": MarketoRequestError,
    "713": MarketoTransientError,
    "714": MarketoRequestError,
    "718": MarketoRequestError,
    "719": MarketoTransientError,
    "1012": MarketoInvalidCookieError,
}

# Next step for the operator, by code, appended to the error message.
_ADVICE = {
    "601": "Fetching a new access token did not help; check the custom service in Admin > LaunchPoint.",
    "602": "Fetching a new access token did not help; check the custom service in Admin > LaunchPoint.",
    "604": "Marketo timed out; send a smaller batch or try again later.",
    "606": "Other integrations may be using the shared limit of 100 calls per 20 seconds.",
    "607": "Calls resume after Marketo's daily reset at midnight US Central time.",
    "608": "The Marketo API is temporarily unavailable; try again later.",
    "610": "The resource does not exist; check the id or name in the request.",
    "612": "Lead database POSTs must be sent as application/json.",
    "614": "Check the base URL and Munchkin Account ID if this persists.",
    "615": "Other integrations may be using the shared limit of 10 calls in flight.",
    "710": "The parent folder no longer exists; look the folder up again.",
    "711": "The folder has the wrong type for this asset; choose a folder under Marketing Activities.",
}


def error_for(code, message, **context) -> MarketoError:
    """Build the exception for a Marketo error `code` with Marketo's `message`.

    `context` carries `request_id`, `path`, `http_status` and, for 603,
    `method`, which picks the role permission the endpoint needs.
    """
    code = None if code is None else str(code)
    method = context.pop("method", None)
    path = context.get("path")
    error_class = _error_class(code)

    if error_class is MarketoPermissionError:
        context = {key: value for key, value in context.items() if key != "path"}
        return permission_error(method or "GET", path or "", **context)

    where = f" on {path}" if path else ""
    text = f"Marketo error {code}{where}: {message or 'no message'}"
    advice = _ADVICE.get(code or "")
    if advice:
        text = f"{text}. {advice}"
    return error_class(text, code=code, **context)


def _error_class(code: str | None) -> type[MarketoError]:
    if code in ERROR_CLASSES:
        return ERROR_CLASSES[code]
    # Record-level 1xxx codes also come back request-wide (Associate Lead,
    # or 1003 for too many filter matches); resending unchanged fails again.
    if code and len(code) == 4 and code.startswith("1"):
        return MarketoRequestError
    return MarketoError


# Role permission each endpoint needs, by method and path, named as the role
# editor in Marketo's UI names them (Admin > Users & Roles > Roles, Access API
# group). The UI uses "Person" where the API docs use "Lead". Where a
# read-only permission would do, the row names the permission Docket's setup
# guide grants, so following the message never leaves the role short for the
# writes that come next. The first matching row wins.
_ENDPOINT_PERMISSIONS: tuple[tuple[str, re.Pattern, str | None], ...] = tuple(
    (method, re.compile(pattern), permission)
    for method, pattern, permission in (
        ("*", r"^/rest/v1/stats/", None),
        ("GET", r"^/rest/v1/leads/\d+/programMembership\.json$", "Read-Only Assets"),
        ("*", r"^/rest/v1/activities/external/type", "Read-Write Activity Metadata"),
        ("GET", r"^/rest/v1/activities/external/types\.json$", "Read-Write Activity Metadata"),
        ("*", r"^/rest/v1/activities", "Read-Write Activity"),
        ("*", r"^/rest/v1/(leads?|programs)\b", "Read-Write Person"),
        ("GET", r"^/rest/asset/", "Read-Only Assets"),
        ("POST", r"^/rest/asset/", "Read-Write Assets"),
    )
)


def required_permission(method: str, path: str) -> str | None:
    """Return the role permission the endpoint needs, or None for endpoints that need none."""
    method = method.upper()
    for row_method, pattern, permission in _ENDPOINT_PERMISSIONS:
        if row_method in ("*", method) and pattern.search(path):
            return permission
    return None


def permission_error(method: str, path: str, **context) -> MarketoPermissionError:
    """Build the 603 error for `path`, naming the permission to grant."""
    permission = required_permission(method, path)
    if permission is None:
        text = (
            f"Marketo denied access to {path} (603), although this endpoint needs no role "
            "permission. An IP allowlist for API access (Admin > Web Services) is probably "
            "blocking this server: add its address to the allowlist."
        )
    else:
        text = (
            f"Marketo denied access to {path} (603). Grant the API-only user's role the "
            f'"{permission}" permission (Admin > Users & Roles > Roles, Access API group). '
            "An IP allowlist for API access (Admin > Web Services) that excludes this server "
            "causes the same error."
        )
    context.setdefault("code", "603")
    return MarketoPermissionError(text, permission=permission, path=path, **context)


@dataclass(frozen=True)
class Reason:
    """Why Marketo skipped one record: a 1xxx code and Marketo's message."""

    code: str
    message: str


@dataclass
class RecordResult:
    """Marketo's outcome for one input record of a batch write."""

    index: int
    status: str
    id: int | None
    marketo_guid: str | None
    reasons: list[Reason] = field(default_factory=list)
    raw: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES

    @property
    def skipped(self) -> bool:
        return self.status == "skipped"

    def has_reason(self, code: str) -> bool:
        return any(reason.code == str(code) for reason in self.reasons)


def parse_record_results(result: list[dict] | None, *, expected: int | None = None) -> list[RecordResult]:
    """Parse a batch write's `result` into RecordResults ordered by input index.

    Marketo returns results in input order. Program-member results also carry
    `seq`, the input index, which is used when present. Failure reasons come
    as `reasons` (most endpoints), `reason` (one object, in the Lead schema)
    or `errors` (Add Custom Activities); all three are read.
    """
    records = []
    for position, item in enumerate(result or []):
        seq = item.get("seq")
        index = int(seq) if seq is not None else position
        raw_id = item.get("id")
        guid = item.get("marketoGUID")
        records.append(
            RecordResult(
                index=index,
                status=str(item.get("status") or ""),
                id=int(raw_id) if raw_id is not None else None,
                marketo_guid=str(guid) if guid is not None else None,
                reasons=_parse_reasons(item),
                raw=item,
            )
        )
    records.sort(key=lambda record: record.index)

    # The write went through, so a count mismatch leaves each record's
    # outcome unknown rather than failed.
    if expected is not None and len(records) != expected:
        raise MarketoOutcomeUnknownError(
            f"Marketo returned {len(records)} results for a batch of {expected} records, "
            "so the results can't be matched to the records. Check the records in Marketo "
            "before sending them again."
        )
    return records


def _parse_reasons(item: dict) -> list[Reason]:
    entries = []
    for key in ("reasons", "errors"):
        value = item.get(key)
        if isinstance(value, list):
            entries.extend(value)
    single = item.get("reason")
    if isinstance(single, dict):
        entries.append(single)

    return [
        Reason(code=str(entry.get("code", "")), message=str(entry.get("message", "")))
        for entry in entries
        if isinstance(entry, dict)
    ]
