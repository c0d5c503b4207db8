"""The webhook Docket posts events to: `POST /api/v1/events`."""

import json
import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, OperationalError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from agents.ingest import ingest_events
from agents.models import Organization, hash_ingest_token

logger = logging.getLogger(__name__)


def _error(status: int, message: str, **headers) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


class InvalidContentLength(ValueError):
    """The Content-Length header is not a non-negative integer."""


def _too_large() -> JsonResponse:
    return _error(
        413, f"The body is larger than {settings.INGEST_MAX_BODY_BYTES} bytes; send fewer events per request."
    )


def _declared_length(request) -> int:
    """Return Content-Length as a number: 0 when absent or invalid, which `_read_body` rejects later."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _read_body(request) -> bytes:
    """Return the body, reading at most one byte more than INGEST_MAX_BODY_BYTES.

    Django reads Content-Length bytes and nothing without that header. A
    chunked request that the WSGI server de-chunks (it then sets
    `wsgi.input_terminated`) has no Content-Length, so its body is read here
    up to the limit instead of being taken for an empty one.
    """
    declared = request.META.get("CONTENT_LENGTH")
    if not declared and request.META.get("wsgi.input_terminated"):
        return request.META["wsgi.input"].read(settings.INGEST_MAX_BODY_BYTES + 1)
    if declared and not declared.strip().isdigit():
        # Django's request.body raises ValueError on such a header.
        raise InvalidContentLength(declared)
    return request.body


def _authenticate(request) -> Organization | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    # The lookup is by hash, so the database compares digests rather than
    # the token; check_ingest_token repeats the comparison in constant time.
    organization = Organization.objects.filter(ingest_token_hash=hash_ingest_token(token.strip())).first()
    if organization is None or not organization.check_ingest_token(token.strip()):
        return None
    return organization


def _over_rate_limit(organization: Organization) -> int:
    """Return seconds to wait when the organization exceeded its requests per minute, else 0."""
    window = int(time.time() // 60)
    key = f"ingest-rate:{organization.pk}:{window}"
    try:
        added = cache.add(key, 1, timeout=120)
        count = 1 if added else cache.incr(key)
    except ValueError:
        # The key expired between add() and incr().
        count = 1
    except Exception:
        # The count lives in Redis or a database table. When it can't be read
        # the request goes on unlimited, because refusing it would turn a
        # broken counter into lost deliveries. Storing the events fails on
        # its own when the database is down.
        logger.warning("ingest.rate_limit.unavailable org=%s", organization.slug, exc_info=True)
        return 0
    if count > settings.INGEST_RATE_LIMIT_PER_MINUTE:
        return 60 - int(time.time()) % 60
    return 0


@csrf_exempt
@require_POST
def receive_events(request):
    """Accept one event or {"events": [...]}; reply with accepted, duplicate and rejected counts."""
    if _declared_length(request) > settings.INGEST_MAX_BODY_BYTES:
        return _too_large()

    try:
        organization = _authenticate(request)
    except (OperationalError, DatabaseError):
        logger.exception("ingest.database_unavailable")
        return _error(503, "The service can't store events right now; nothing was stored. Retry later.", Retry_After="30")
    if organization is None:
        return _error(401, "Missing or invalid ingest token; send it as 'Authorization: Bearer <token>'.")

    try:
        body = _read_body(request)
    except RequestDataTooBig:
        return _too_large()
    except InvalidContentLength as error:
        return _error(400, f"Content-Length {str(error)[:40]!r} is invalid; send the body's size in bytes.")
    if len(body) > settings.INGEST_MAX_BODY_BYTES:
        return _too_large()

    wait = _over_rate_limit(organization)
    if wait:
        return _error(429, "Too many requests for this organization; retry after the time in Retry-After.", Retry_After=str(wait))

    if not body.strip():
        return _error(
            400, "The body is empty; send an event object, {\"events\": [...]}, or a list of event objects, with Content-Length."
        )
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        # ValueError covers JSONDecodeError and integers over Python's
        # 4,300-digit limit for converting text to int.
        return _error(400, f"The body is not valid JSON: {error}.")
    except RecursionError:
        return _error(400, "The body is nested too deeply to parse; events are at most a few levels deep.")

    if isinstance(document, dict) and "events" in document:
        events = document["events"]
        if not isinstance(events, list):
            return _error(400, '"events" must be a list of event objects.')
    elif isinstance(document, dict):
        events = [document]
    elif isinstance(document, list):
        events = document
    else:
        return _error(400, "The body must be an event object, {\"events\": [...]}, or a list of event objects.")
    not_objects = [index for index, event in enumerate(events) if not isinstance(event, dict)]
    if not_objects:
        shown = ", ".join(str(index) for index in not_objects[:10])
        return _error(
            400,
            f"Every event must be a JSON object; the events at index {shown} are not. Nothing was stored.",
        )

    try:
        report = ingest_events(organization, events)
    except (OperationalError, DatabaseError):
        logger.exception("ingest.database_unavailable org=%s", organization.slug)
        return _error(503, "The service can't store events right now; events not acknowledged here were not stored. Retry later.", Retry_After="30")
    return JsonResponse(report.as_response())
