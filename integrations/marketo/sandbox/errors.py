"""Errors a sandbox endpoint raises, mapped to Marketo's response shapes.

Marketo returns nearly every failure as HTTP 200, with `success: false` and an
`errors` list of `{code, message}` where `code` is a string. Only the
transport-level failures (401 from Identity, 413, 414, 5xx) use HTTP statuses.
"""

# Codes that Marketo's error-code page marks with an asterisk. A call that
# fails with one of them counts neither against the daily quota nor the rate limit.
UNCOUNTED_CODES = frozenset({"601", "602", "604", "605", "608", "611"})

# Messages for request-level codes. Marketo's error-code page gives one
# meaning per code; these texts restate it. 606 is Marketo's own template,
# typo included ("with in").
MESSAGES = {
    "601": "Access token invalid",
    "602": "Access token expired",
    "603": "Access denied",
    "604": "Request timed out",
    "605": "Request method '{method}' not supported",
    "606": "Max rate limit '{calls}' exceeded with in '{seconds}' secs",
    "607": "Daily quota reached",
    "608": "API Temporarily Unavailable",
    "609": "Invalid JSON",
    "610": "Requested resource not found",
    "611": "System error",
    "612": "Invalid Content Type",
    "615": "Concurrent access limit reached",
}


class ApiError(Exception):
    """A request-level failure: HTTP 200 with `success: false`."""

    def __init__(self, code: str | int, message: str | None = None):
        self.code = str(code)
        self.message = message if message is not None else MESSAGES.get(self.code, "Error")
        super().__init__(f"{self.code} {self.message}")


class HttpError(Exception):
    """A failure returned with an HTTP status other than 200."""

    def __init__(self, status: int, body: dict, headers: dict | None = None):
        self.status = status
        self.body = body
        self.headers = headers or {}
        super().__init__(f"HTTP {status}")


def reason(code: str | int, message: str) -> dict:
    """Return one per-record reason (`reasons[]` or `errors[]` element)."""
    return {"code": str(code), "message": message}


def skipped(code: str | int, message: str) -> dict:
    """Return a per-record `skipped` result carrying one reason."""
    return {"status": "skipped", "reasons": [reason(code, message)]}
