"""Builders for test rows, so tests state only what matters to them."""

import json
from pathlib import Path

from agents.models import Agent, AgentWriteback, Organization

REPO = Path(__file__).resolve().parent.parent
SAMPLE_EVENTS = REPO / "demo" / "events.jsonl"


def make_organization(slug: str = "acme", name: str = "Acme") -> tuple[Organization, str]:
    """Create an organization; return it with its plaintext ingest token."""
    organization = Organization(slug=slug, name=name)
    token = organization.issue_ingest_token()
    organization.save()
    return organization, token


def make_agent(organization: Organization, external_id: str = "agt_1", **writeback) -> Agent:
    agent = Agent.objects.create(organization=organization, external_id=external_id, name=f"Agent {external_id}")
    AgentWriteback.objects.create(agent=agent, **writeback)
    return agent


def sample_events() -> list[dict]:
    return [json.loads(line) for line in SAMPLE_EVENTS.read_text(encoding="utf-8").splitlines() if line.strip()]


def conversation_event(
    event_id: str = "evt_1",
    conversation_id: str = "conv_1",
    email: str | None = "ada@example.org",
    agent_id: str = "agt_1",
    started_at: str = "2026-11-02T09:41:11-06:00",
    ended_at: str = "2026-11-02T09:47:13-06:00",
    **conversation,
) -> dict:
    visitor = {"first_name": "Ada", "last_name": "Lovelace", "company": "Analytical Engines"}
    if email is not None:
        visitor["email"] = email
    body = {
        "id": conversation_id,
        "started_at": started_at,
        "ended_at": ended_at,
        "visitor": visitor,
        "page_url": "https://www.example.com/pricing",
        "landing_page_url": "https://www.example.com/?utm_source=google&utm_medium=cpc&utm_campaign=spring&gclid=abc123",
        "summary": "Asked about pricing.",
        "transcript": [
            {"role": "visitor", "text": "How much is it?", "sent_at": started_at},
            {"role": "agent", "text": "It starts at $100 a month.", "sent_at": ended_at},
        ],
        "meeting_status": "not_booked",
    }
    body.update(conversation)
    return {
        "event_id": event_id,
        "type": "conversation.completed",
        "occurred_at": ended_at,
        "agent": {"id": agent_id, "name": "Pricing SDR"},
        "conversation": body,
    }


def meeting_event(
    event_id: str = "evt_m1",
    meeting_id: str = "mtg_1",
    conversation_id: str | None = "conv_1",
    email: str | None = "ada@example.org",
    event_type: str = "meeting.booked",
    agent_id: str = "agt_1",
    start_at: str = "2026-11-05T10:00:00-06:00",
    occurred_at: str = "2026-11-02T09:46:22-06:00",
) -> dict:
    status = event_type.split(".", 1)[1]
    meeting = {
        "id": meeting_id,
        "booking_id": "bkg_1",
        "subject": "Demo",
        "description": "Booked by the agent.",
        "start_at": start_at,
        "end_at": start_at.replace("10:00:00", "10:30:00"),
        "owner": {"name": "Hannah Reyes", "email": "hannah@example.com"},
        "attendee": {"email": email, "first_name": "Ada", "last_name": "Lovelace"} if email else {},
        "conferencing_url": "https://zoom.example/j/1",
        "status": status,
    }
    if conversation_id:
        meeting["conversation_id"] = conversation_id
    return {
        "event_id": event_id,
        "type": event_type,
        "occurred_at": occurred_at,
        "agent": {"id": agent_id, "name": "Pricing SDR"},
        "meeting": meeting,
    }
