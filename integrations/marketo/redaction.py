"""Scrubbing of secrets from log records.

Marketo's token request carries the client secret in its query string, and
urllib3 logs request lines with their query strings at DEBUG. Every record
that passes this filter has its query strings and secret-looking values
replaced before any handler writes it.
"""

import logging
import re

REDACTED = "[redacted]"

# A URL's query string: from "?" to the next whitespace or quote.
_QUERY_STRING = re.compile(r"(\?)[^\s\"'<>]+")
# key=value pairs whose key names a credential, in query strings, forms,
# text or JSON ("client_secret": "..."). The client id is included because
# together with a leaked secret it is the whole credential.
_SECRET_PAIR = re.compile(
    r"(?i)\b(client_secret|client_id|access_token|api_key|apikey|password|token|secret)"
    r"([\"']?\s*[=:]\s*[\"']?)([^\s&\"',}]+)"
)
_BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._:\-]+")


def redact(text: str) -> str:
    """Return `text` with query strings, bearer tokens and secret values replaced."""
    text = _QUERY_STRING.sub(r"\1" + REDACTED, text)
    text = _SECRET_PAIR.sub(r"\1\2" + REDACTED, text)
    return _BEARER.sub("Bearer " + REDACTED, text)


class RedactingFilter(logging.Filter):
    """Rewrite a record's message and arguments with `redact` (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        redacted = redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record.msg = redacted
        record.args = None
        return True
