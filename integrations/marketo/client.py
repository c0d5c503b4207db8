"""Transport for Marketo's REST API: base URL, access tokens, retries and error mapping.

Endpoint methods live in `endpoints.py`; this module sends one request and
turns Marketo's response into a parsed envelope or a typed error from
`exceptions.py`. What is retried follows the action class of each code:

- 606 and 615 (rate and concurrency limits) wait with jitter and retry.
- 601 and 602 (token invalid or expired) fetch a new token once and retry.
- 604, 608, 611, 614, 713, 719, HTTP 5xx, timeouts and connection errors retry
  with exponential backoff up to `max_attempts`. For a non-idempotent call,
  a timeout, a dropped connection, HTTP 5xx or 604 may mean Marketo applied
  it, so the client raises MarketoOutcomeUnknownError instead of retrying.
  Other codes mean Marketo executed nothing, so they are retried for every call.
- 607 raises MarketoQuotaExceededError at once; 702 returns an empty result.
"""

import logging
import random as random_module
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import requests
import urllib3.exceptions

from integrations.marketo.encoding import (
    FORM_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    MAX_BODY_BYTES,
    MAX_URL_BYTES,
    check_path,
    encode_body,
    encode_query,
    normalize_base_url,
)
from integrations.marketo.endpoints import MarketoEndpointsMixin
from integrations.marketo.exceptions import (
    NOOP_CODES,
    UNCOUNTED_CODES,
    MarketoCredentialsError,
    MarketoError,
    MarketoOutcomeUnknownError,
    MarketoPayloadTooLargeError,
    MarketoRequestError,
    MarketoTransientError,
    MarketoUnreachableError,
    error_for,
)
from integrations.marketo.redaction import RedactingFilter, redact

logger = logging.getLogger(__name__)

# urllib3 logs each request line with its query string at DEBUG, and the
# token request carries the client secret there. A filter on its logger
# rewrites those records before any handler receives them, configured or not.
_urllib3_logger = logging.getLogger("urllib3.connectionpool")
if not any(isinstance(existing, RedactingFilter) for existing in _urllib3_logger.filters):
    _urllib3_logger.addFilter(RedactingFilter())

# A token is used until this many seconds before the expiry Marketo reports, so
# a call never starts with a token that runs out on the way.
TOKEN_EXPIRY_MARGIN_SECONDS = 60

# Codes whose retry is safe for every call, because Marketo executed nothing.
_RETRY_CODES = frozenset({"608", "611", "614", "713", "719"})
_RATE_LIMIT_CODES = frozenset({"606", "615"})
_TOKEN_CODES = frozenset({"601", "602"})


@dataclass
class _CachedToken:
    value: str
    expires_at: float  # on the client's monotonic clock


# Tokens belong to a custom service (client id) on one instance, so every
# client in the process with the same pair shares one token.
_token_cache: dict[tuple[str, str], _CachedToken] = {}
_token_locks: dict[tuple[str, str], threading.Lock] = {}
_token_cache_lock = threading.Lock()


def clear_token_cache() -> None:
    """Forget every cached access token (tests, and after credentials change)."""
    with _token_cache_lock:
        _token_cache.clear()


@dataclass
class _Answer:
    """Outcome of one HTTP attempt: a response, or a transport failure."""

    response: requests.Response | None = None
    failure: str | None = None  # "timeout", "connection" or "unreachable"
    sent: bool = True  # False only when the request surely never reached Marketo
    detail: str = ""
    elapsed_ms: float = 0.0


class MarketoClient(MarketoEndpointsMixin):
    """Client for one Marketo instance and one custom service (client id and secret)."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        limiter=None,
        usage_recorder=None,
        connect_timeout=None,
        read_timeout=None,
        max_attempts=None,
        backoff_base=None,
        backoff_max=None,
        rate_limit_wait=None,
        sleep=time.sleep,
        monotonic=time.monotonic,
        random=random_module.random,
        session=None,
    ):
        if not client_id or not client_secret:
            raise ValueError("A Marketo client id and client secret are both required.")
        self.base_url = normalize_base_url(base_url)
        self.host = urlsplit(self.base_url).hostname
        self.client_id = client_id
        self._client_secret = client_secret
        self.limiter = limiter
        self.usage_recorder = usage_recorder

        self.connect_timeout = _setting(connect_timeout, "MARKETO_CONNECT_TIMEOUT_SECONDS", 5.0)
        self.read_timeout = _setting(read_timeout, "MARKETO_READ_TIMEOUT_SECONDS", 100.0)
        self.max_attempts = max(1, int(_setting(max_attempts, "MARKETO_MAX_CALL_ATTEMPTS", 4)))
        self.backoff_base = _setting(backoff_base, "MARKETO_BACKOFF_BASE_SECONDS", 1.0)
        self.backoff_max = _setting(backoff_max, "MARKETO_BACKOFF_MAX_SECONDS", 30.0)
        # After a 606 the client waits for Marketo's 20-second window to move
        # on. MARKETO_RATE_LIMIT_WAIT_SECONDS shortens it for tests only.
        self.rate_limit_wait = float(_setting(rate_limit_wait, "MARKETO_RATE_LIMIT_WAIT_SECONDS", 20.0))

        self._sleep = sleep
        self._monotonic = monotonic
        self._random = random
        self.session = session or requests.Session()
        self._token_key = (self.base_url, client_id)

    def __repr__(self):
        return f"<MarketoClient {self.base_url} client_id={self.client_id[:6]}…>"

    @classmethod
    def for_connection(cls, connection, **overrides) -> "MarketoClient":
        """Build a client for a MarketoConnection, with its shared limiter and usage accounting."""
        from integrations.marketo.quota import usage_recorder_for
        from integrations.marketo.ratelimit import build_rate_limiter

        options = {"limiter": build_rate_limiter(connection), "usage_recorder": usage_recorder_for(connection)}
        options.update(overrides)
        return cls(connection.base_url, connection.client_id, connection.get_client_secret(), **options)

    # --- Access tokens -------------------------------------------------------

    def _access_token(self) -> str:
        with _token_cache_lock:
            cached = _token_cache.get(self._token_key)
            if cached and cached.expires_at > self._monotonic():
                return cached.value
            key_lock = _token_locks.setdefault(self._token_key, threading.Lock())

        # One thread per key fetches; the others wait, then reuse its token.
        with key_lock:
            with _token_cache_lock:
                cached = _token_cache.get(self._token_key)
                if cached and cached.expires_at > self._monotonic():
                    return cached.value

            token, expires_in = self._fetch_token()

            # A token fetched near its end comes back with only seconds left
            # (Marketo hands out the same token until it expires), so a short
            # lifetime is used as it is rather than cut by the margin.
            lifetime = expires_in - TOKEN_EXPIRY_MARGIN_SECONDS
            if lifetime <= 0:
                lifetime = expires_in
            with _token_cache_lock:
                _token_cache[self._token_key] = _CachedToken(token, self._monotonic() + lifetime)
            return token

    def _discard_token(self, token: str) -> None:
        # Only the rejected token is dropped: another thread may already have
        # replaced it with a fresh one.
        with _token_cache_lock:
            cached = _token_cache.get(self._token_key)
            if cached and cached.value == token:
                del _token_cache[self._token_key]

    def _fetch_token(self) -> tuple[str, float]:
        path = "/identity/oauth/token"
        # Marketo's identity service takes the credentials only as query
        # parameters. Nothing here logs this URL, and the redacting filter
        # on urllib3's logger removes it from urllib3's DEBUG lines.
        query = urlencode(
            {"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self._client_secret}
        )
        attempt = 0
        while True:
            attempt += 1
            answer = self._send("GET", path, query, None, {"Accept": JSON_CONTENT_TYPE})
            response = answer.response

            if response is not None and response.status_code == 401:
                raise MarketoCredentialsError(
                    f"Marketo at {self.host} rejected the client id or client secret (HTTP 401). "
                    "Copy both again from Admin > Integration > LaunchPoint > View Details.",
                    path=path,
                    http_status=401,
                )

            retryable = answer.failure is not None or response.status_code >= 500
            if retryable and attempt < self.max_attempts:
                wait = self._backoff(attempt)
                logger.warning(
                    "Marketo token request to %s failed (%s); retrying in %.1f s (attempt %d of %d)",
                    self.host, _describe(answer), wait, attempt, self.max_attempts,
                )
                self._sleep(wait)
                continue
            if answer.failure is not None:
                raise self._transport_error(answer, path, idempotent=True)
            if retryable:
                raise MarketoTransientError(
                    f"Marketo's identity service at {self.host} failed with HTTP {response.status_code}; "
                    "try again later.",
                    path=path,
                    http_status=response.status_code,
                )
            if response.status_code != 200:
                raise MarketoRequestError(
                    f"Marketo's identity service at {self.host} returned HTTP {response.status_code}; "
                    "check the base URL.",
                    path=path,
                    http_status=response.status_code,
                )

            body = _json_or_none(response)
            token = body.get("access_token") if isinstance(body, dict) else None
            if not token:
                raise MarketoCredentialsError(
                    f"Marketo at {self.host} returned no access token; check the base URL and the "
                    "custom service in Admin > Integration > LaunchPoint.",
                    path=path,
                    http_status=response.status_code,
                )
            expires_in = float(body.get("expires_in") or 0)
            logger.info("Fetched a Marketo access token from %s (expires in %d s)", self.host, expires_in)
            return token, expires_in

    # --- Requests ------------------------------------------------------------

    def request(self, method, path, *, params=None, json=None, form=None, idempotent=True) -> dict:
        """Send one REST call and return Marketo's parsed envelope on success.

        `path` starts with /rest/. `json` is sent as application/json and
        `form` as application/x-www-form-urlencoded, with dict and list values
        of `form` encoded as JSON strings, as the Asset API expects. Raises a
        MarketoError subclass for every failure; a 702 returns the envelope
        with an empty `result`.
        """
        method = method.upper()
        check_path(path)
        if json is not None and form is not None:
            raise ValueError("Pass either json or form, not both.")

        body, content_type = encode_body(json, form)
        query = encode_query(params)
        if method == "POST" and content_type is None:
            # Lead database POSTs without a JSON content type fail with 612.
            content_type = JSON_CONTENT_TYPE
        if method == "GET" and len(self._url(path, query)) > MAX_URL_BYTES:
            method, query, body, content_type = "POST", "_method=GET", query.encode(), FORM_CONTENT_TYPE
        if body is not None and len(body) > MAX_BODY_BYTES:
            raise MarketoPayloadTooLargeError(
                f"Request body for {path} is {len(body):,} bytes, over Marketo's limit of "
                f"{MAX_BODY_BYTES:,} bytes; send fewer records per call.",
                path=path,
            )

        # A token refresh and a resend as POST don't use up an attempt,
        # because they change the request instead of repeating it.
        attempt = 1
        token_refreshed = False
        reshaped = query == "_method=GET"
        while True:
            token = self._access_token()
            headers = {"Authorization": f"Bearer {token}", "Accept": JSON_CONTENT_TYPE}
            if content_type:
                headers["Content-Type"] = content_type

            if self.limiter is not None:
                with self.limiter.slot():
                    answer = self._send(method, path, query, body, headers)
            else:
                answer = self._send(method, path, query, body, headers)
            envelope, code, request_id = self._read(answer)
            self._log_call(method, path, answer, code, request_id, attempt)

            response = answer.response
            status = response.status_code if response is not None else None
            context = {"path": path, "request_id": request_id, "http_status": status}

            if answer.failure is None and status == 200 and envelope.get("success") is True:
                return envelope

            # Marketo's 702 means "nothing matched": an empty result.
            if code in NOOP_CODES:
                return {**envelope, "result": []}

            if code in _TOKEN_CODES or status == 401:
                if token_refreshed:
                    raise error_for(code or "601", _message(envelope) or "access token rejected", **context)
                token_refreshed = True
                self._discard_token(token)
                logger.warning("Marketo %s %s: access token rejected (%s); fetching a new one", method, path, code)
                continue

            if status == 414 and method == "GET" and not reshaped:
                # Marketo accepts a long GET as a POST with its query as a form body.
                method, query, body, content_type = "POST", "_method=GET", query.encode(), FORM_CONTENT_TYPE
                reshaped = True
                continue

            error, wait = self._decide(answer, code, envelope, attempt, idempotent, context, method)
            if wait is None:
                raise error
            logger.warning(
                "Marketo %s %s failed with %s; retrying in %.1f s (attempt %d of %d)",
                method, path, code or _describe(answer), wait, attempt, self.max_attempts,
            )
            self._sleep(wait)
            attempt += 1

    def _decide(self, answer, code, envelope, attempt, idempotent, context, method):
        """Return (error, seconds to wait before a retry), with None for no retry."""
        path = context["path"]
        status = context["http_status"]
        attempts_left = attempt < self.max_attempts

        if code in _RATE_LIMIT_CODES:
            # Full jitter spreads the workers' retries; after a 606 the wait
            # also covers the rest of Marketo's 20-second window.
            wait = self._backoff(attempt)
            if code == "606":
                wait += self.rate_limit_wait
            error = error_for(code, _message(envelope), **context)
            error.retry_after_seconds = wait
            return error, (wait if attempts_left else None)

        # A call that may have run: a timeout or dropped connection after the
        # request was sent, HTTP 5xx, a body that isn't Marketo's JSON, or 604.
        unclear = (
            (answer.failure is not None and answer.sent)
            or (status is not None and status >= 500)
            or (status == 200 and not envelope)
            or code == "604"
        )
        if unclear and not idempotent:
            return MarketoOutcomeUnknownError(
                f"The outcome of Marketo {method} {path} is unknown ({code or _describe(answer)}): it may have been applied. "
                "It is not resent automatically; check the records in Marketo before sending them again.",
                code=code,
                **context,
            ), None

        if answer.failure is not None:
            return self._transport_error(answer, path, idempotent), (self._backoff(attempt) if attempts_left else None)

        if (status is not None and status >= 500) or (status == 200 and not envelope):
            error = MarketoTransientError(
                f"Marketo {method} {path} failed with HTTP {status}; try again later.", code=code, **context
            )
            return error, (self._backoff(attempt) if attempts_left else None)

        if status == 413:
            return MarketoPayloadTooLargeError(
                f"Marketo rejected the body of {path} as too large (HTTP 413); send fewer records per call.",
                **context,
            ), None

        if status != 200:
            location = urlsplit(answer.response.headers.get("Location", "")).netloc
            hint = f" to {location}; check the base URL" if location else "; check the base URL and path"
            return MarketoRequestError(
                f"Marketo {method} {path} returned HTTP {status}{hint}.", **context
            ), None

        error = error_for(code, _message(envelope), method=method, **context)
        if code == "604" or code in _RETRY_CODES:
            return error, (self._backoff(attempt) if attempts_left else None)
        return error, None

    def _transport_error(self, answer: _Answer, path: str, idempotent: bool) -> MarketoError:
        if answer.failure == "unreachable":
            return MarketoUnreachableError(
                f"Could not reach Marketo at {self.base_url} ({answer.detail}). Check the base URL "
                "(Admin > Integration > Web Services) and this server's network access.",
                path=path,
            )
        what = "timed out" if answer.failure == "timeout" else "lost its connection"
        return MarketoTransientError(f"Marketo call to {path} {what} ({answer.detail}); try again later.", path=path)

    def _send(self, method, path, query, body, headers) -> _Answer:
        """Send one HTTP request; transport failures come back as an _Answer, not an exception."""
        url = self._url(path, query)
        headers = {"Accept-Encoding": "gzip", "User-Agent": "docket-marketo-writeback", **headers}
        started = self._monotonic()
        try:
            response = self.session.request(
                method,
                url,
                data=body,
                headers=headers,
                timeout=(self.connect_timeout, self.read_timeout),
                allow_redirects=False,
            )
        except requests.exceptions.ConnectTimeout as exc:
            answer = _Answer(failure="unreachable", sent=False, detail=_exception_detail(exc))
        except requests.exceptions.Timeout as exc:
            answer = _Answer(failure="timeout", sent=True, detail=_exception_detail(exc))
        except requests.exceptions.ConnectionError as exc:
            if _failed_before_sending(exc):
                answer = _Answer(failure="unreachable", sent=False, detail=_exception_detail(exc))
            else:
                answer = _Answer(failure="connection", sent=True, detail=_exception_detail(exc))
        else:
            answer = _Answer(response=response)
        answer.elapsed_ms = (self._monotonic() - started) * 1000
        return answer

    def _read(self, answer: _Answer) -> tuple[dict, str | None, str | None]:
        """Parse the envelope; return it with Marketo's first error code and the request id."""
        if answer.response is None:
            return {}, None, None
        envelope = _json_or_none(answer.response)
        if not isinstance(envelope, dict):
            return {}, None, None
        errors = envelope.get("errors") or []
        code = None
        if not envelope.get("success") and errors and isinstance(errors[0], dict):
            code = str(errors[0].get("code")) if errors[0].get("code") is not None else None
        return envelope, code, envelope.get("requestId")

    def _log_call(self, method, path, answer, code, request_id, attempt):
        status = answer.response.status_code if answer.response is not None else None
        if code:
            outcome = code
        elif answer.failure:
            outcome = answer.failure
        elif status == 200:
            outcome = "ok"
        else:
            outcome = f"HTTP {status}"
        logger.info(
            "Marketo %s %s: %s (HTTP %s, %.0f ms, requestId %s, attempt %d)",
            method, path, outcome, status, answer.elapsed_ms, request_id, attempt,
        )

        if self.usage_recorder is None or not answer.sent:
            return
        label = None if outcome == "ok" else outcome
        try:
            self.usage_recorder(path, label, code not in UNCOUNTED_CODES)
        except Exception:
            # Failing the call here would report a sent (maybe applied) write
            # as failed, so a broken usage counter is logged instead.
            logger.exception("Recording Marketo usage for %s failed", path)

    def _backoff(self, attempt: int) -> float:
        """Return a full-jitter exponential backoff for `attempt` (1-based)."""
        cap = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return cap * self._random()

    def _url(self, path: str, query: str = "") -> str:
        return f"{self.base_url}{path}?{query}" if query else f"{self.base_url}{path}"


def _setting(value, name, default):
    if value is not None:
        return value
    from django.conf import settings

    return getattr(settings, name, default) if settings.configured else default


def _json_or_none(response: requests.Response):
    try:
        return response.json()
    except ValueError:
        return None


def _message(envelope: dict) -> str:
    errors = envelope.get("errors") or []
    if errors and isinstance(errors[0], dict):
        return str(errors[0].get("message") or "")
    return ""


def _failed_before_sending(exc: requests.exceptions.ConnectionError) -> bool:
    """Return True when the error shows the request never left (DNS, refused, TLS)."""
    if isinstance(exc, requests.exceptions.SSLError):
        return True
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        reason = reason.reason
    return isinstance(reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.SSLError))


def _exception_detail(exc: Exception) -> str:
    # requests puts the full URL, query string included, in its messages.
    return f"{type(exc).__name__}: {redact(str(exc))}"[:300]


def _describe(answer: _Answer) -> str:
    if answer.failure:
        return answer.failure
    return f"HTTP {answer.response.status_code}"
