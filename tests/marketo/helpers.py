"""Builders for Marketo envelopes and helpers to inspect recorded requests and logs."""

import logging

from integrations.marketo.redaction import RedactingFilter


def ok(result=None, **extra):
    return {"json": {"requestId": "r#1", "success": True, "result": result or [], **extra}}


def fail(code, message="failed"):
    return {"json": {"requestId": "r#2", "success": False, "errors": [{"code": code, "message": message}]}}


def filtered_message(record: logging.LogRecord) -> str:
    """Return the record's message as a handler with the LOGGING filter writes it."""
    copy = logging.makeLogRecord(record.__dict__)
    RedactingFilter().filter(copy)
    return copy.getMessage()


def rest_calls(marketo):
    return [request for request in marketo.request_history if "/rest/" in request.path]
