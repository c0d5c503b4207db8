"""State shared by the stages of one flush of one connection."""

import json
from dataclasses import dataclass, field
from datetime import datetime

from integrations.models import MarketoConnection

# Marketo rejects request bodies over 1 MB with HTTP 413; batches are packed
# below that with room for the envelope.
MAX_BODY_BYTES = 1_000_000
MAX_BATCH_RECORDS = 300


@dataclass
class FlushReport:
    written: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    retried: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    paused_reason: str = ""
    # True when the flush stopped at its time budget with work still due.
    stopped_early: bool = False

    def count(self, bucket: str, action: str, amount: int = 1):
        counts = getattr(self, bucket)
        counts[action] = counts.get(action, 0) + amount

    def merge(self, other: "FlushReport"):
        for bucket in ("written", "skipped", "failed", "retried"):
            for action, amount in getattr(other, bucket).items():
                self.count(bucket, action, amount)
        self.batches += other.batches
        self.paused_reason = other.paused_reason or self.paused_reason


@dataclass
class FlushContext:
    connection: MarketoConnection
    client: object
    now: datetime
    report: FlushReport
    owner: str
    # Why backfill records wait (their share of today's budget is used up)
    # while live records still go out; empty while backfill may send.
    backfill_paused: str = ""


def pack_by_size(
    items: list, payload_of=lambda item: item, *, max_items: int = MAX_BATCH_RECORDS, max_bytes: int = MAX_BODY_BYTES
) -> list[list]:
    """Split items into consecutive chunks of at most `max_items` and about `max_bytes` of JSON payload."""
    chunks, current, current_size = [], [], 2
    for item in items:
        size = len(json.dumps(payload_of(item), ensure_ascii=False).encode("utf-8")) + 1
        if current and (len(current) >= max_items or current_size + size > max_bytes):
            chunks.append(current)
            current, current_size = [], 2
        current.append(item)
        current_size += size
    if current:
        chunks.append(current)
    return chunks
