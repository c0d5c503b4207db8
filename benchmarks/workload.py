"""The benchmark's input: sample-sized conversation events and the agents' writeback configuration.

Events are copies of the conversation events in demo/events.jsonl with new
event ids, conversation ids and visitor emails, so every conversation
belongs to a distinct visitor. Munchkin cookies are removed, because an
association costs one unbatched call per conversation and is measured
nowhere here.
"""

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE_EVENTS = REPO / "demo" / "events.jsonl"
DEMO_CONFIG = REPO / "demo" / "writeback-config.json"

# The default enrollment rules and one fill-if-empty lead field update: a
# batch of conversations then costs one Get Leads read, one Sync Leads, one
# Add Custom Activities and one Sync Program Member Status call.
FIELD_UPDATES = [
    {"source": "first_touch.utm_source", "marketo_field": "firstTouchUtmSource", "mode": "fill_if_empty"},
]
ENROLLMENT_RULES = [
    {"id": "default-conversation", "trigger": "conversation_completed", "program": "Docket Engagement", "status": "Engaged"},
    {"id": "default-meeting", "trigger": "meeting_booked", "program": "Docket Engagement", "status": "Meeting Booked"},
]


def writeback_config() -> dict:
    """Return the demo's agents with lead sync, activities, the default rules and one fill-if-empty update."""
    document = json.loads(DEMO_CONFIG.read_text(encoding="utf-8"))
    for agent in document["agents"]:
        agent["field_updates"] = copy.deepcopy(FIELD_UPDATES)
        agent["enrollment_rules"] = copy.deepcopy(ENROLLMENT_RULES)
    return document


def conversation_templates() -> list[dict]:
    events = [json.loads(line) for line in SAMPLE_EVENTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [event for event in events if event["type"] == "conversation.completed"]


def conversation_events(count: int, run_tag: str, *, start: int = 0, ended_at: datetime | None = None) -> Iterator[dict]:
    """Yield `count` conversation events of distinct visitors, built one at a time so memory stays flat.

    `ended_at` moves every conversation to end then (default: the sample's
    own times), keeping each sample's duration and message spacing.
    """
    templates = conversation_templates()
    for index in range(start, start + count):
        event = copy.deepcopy(templates[index % len(templates)])
        event["event_id"] = f"evt_{run_tag}_{index:06d}"
        conversation = event["conversation"]
        conversation["id"] = f"conv_{run_tag}_{index:06d}"
        conversation["visitor"]["email"] = f"visitor{index:06d}@{run_tag}.bench.example"
        conversation.pop("munchkin_cookie", None)
        if ended_at is not None:
            _shift_times(event, ended_at)
        yield event


def _shift_times(event: dict, ended_at: datetime):
    conversation = event["conversation"]
    offset = ended_at - datetime.fromisoformat(conversation["ended_at"])

    def shifted(value: str) -> str:
        return (datetime.fromisoformat(value) + offset).astimezone(UTC).isoformat()

    conversation["started_at"] = shifted(conversation["started_at"])
    conversation["ended_at"] = shifted(conversation["ended_at"])
    for message in conversation.get("transcript", []):
        if message.get("sent_at"):
            message["sent_at"] = shifted(message["sent_at"])
    event["occurred_at"] = (ended_at + timedelta(seconds=1)).astimezone(UTC).isoformat()
