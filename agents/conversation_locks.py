"""Locks that order storing a conversation against storing the meetings that name it.

A meeting event names its booking conversation by id. When the two arrive
in concurrent requests, each transaction could miss the other's uncommitted
row: the meeting finds no conversation to link, and the conversation finds
no meeting waiting for it. The meeting's activity would then wait its full
delay and go out without the conversation's attribution. Both sides take a
lock on (organization, conversation id) before they look, so the second
one to arrive sees the first one's committed row.
"""

import hashlib

from django.db import connection


def lock_conversation_ids(organization_id: int, external_ids) -> None:
    """Take the transaction-scoped locks for these conversation ids, in one fixed order.

    Must run inside a transaction. On PostgreSQL these are advisory locks,
    released at commit or rollback. They are taken in sorted order, so two
    requests can't deadlock on them. SQLite needs none, because this
    project opens its SQLite transactions with BEGIN IMMEDIATE and so runs
    one writer at a time.
    """
    if connection.vendor != "postgresql":
        return
    keys = sorted({_lock_key(organization_id, external_id) for external_id in external_ids if external_id})
    if not keys:
        return
    with connection.cursor() as cursor:
        # A function scan over unnest() returns the array's elements in order.
        cursor.execute("SELECT pg_advisory_xact_lock(key) FROM unnest(%s::bigint[]) AS key", [keys])


def _lock_key(organization_id: int, external_id: str) -> int:
    """Return a signed 64-bit advisory lock key; a collision only serializes two unrelated writes."""
    digest = hashlib.blake2b(f"docket-conversation:{organization_id}:{external_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
