"""A flush reads a batch's rows once: no query per record for text, visitors or agents."""

import re

from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.ingest import ingest_events
from agents.writeback_config import apply_config
from integrations.models import WritebackRecord
from integrations.writeback.drain import drain
from tests.enrollment.fake_openai import decision, fake_openai  # noqa: F401 (pytest fixture)
from tests.factories import conversation_event

AGENT = "agt_p7k2m9x4q1ra"
# Django's load of one deferred column, or of one related row, by primary key.
SINGLE_ROW_READ = re.compile(r'FROM "agents_(conversation|visitor|agent)" WHERE "agents_\1"\."id" = ')

TEXT_FIELD_UPDATES = [
    {"source": "summary", "marketo_field": "docketSummary", "mode": "overwrite"},
    {"source": "pca:budget_range", "marketo_field": "lastCampaign", "mode": "overwrite"},
    {"source": "first_touch.utm_source", "marketo_field": "firstTouchUtmSource", "mode": "fill_if_empty"},
]
CUSTOM_RULE = {
    "id": "enterprise-pricing",
    "trigger": "custom_criteria",
    "criteria": "Enroll if the visitor asked about pricing.",
    "program": "Enterprise Nurture",
    "status": "Engaged",
}


def conversations(first: int, count: int) -> list[dict]:
    return [
        conversation_event(
            event_id=f"e{number}", conversation_id=f"c{number}", email=f"v{number}@example.org", agent_id=AGENT,
            summary=f"Asked about pricing, visit {number}.", post_call_analysis={"budget_range": "50k-100k"},
        )
        for number in range(first, first + count)
    ]


def drain_queries(organization) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        drain(organization, timeout_seconds=30)
    return [query["sql"] for query in captured.captured_queries]


def test_text_field_updates_read_once_per_batch(connected, sandbox):
    apply_config(connected, {"agents": [{"id": AGENT, "field_updates": TEXT_FIELD_UPDATES}]})

    ingest_events(connected, conversations(0, 3))
    small = drain_queries(connected)
    ingest_events(connected, conversations(100, 30))
    large = drain_queries(connected)

    assert [sql for sql in large if SINGLE_ROW_READ.search(sql)] == []
    # Ten times the records take about the same statements, so nothing grows per record.
    assert len(large) - len(small) < 10
    lead = sandbox.state.find_leads("v100@example.org")[0]
    assert lead["docketSummary"] == "Asked about pricing, visit 100."
    assert lead["lastCampaign"] == "50k-100k"


def test_custom_criteria_text_read_once_per_batch(connected, sandbox, fake_openai):  # noqa: F811
    apply_config(connected, {"agents": [{"id": AGENT, "enrollment_rules": [CUSTOM_RULE]}]})
    count = 12
    fake_openai.script(*[decision(True, "The visitor asked about pricing.", ["pricing"]) for _ in range(count)])

    ingest_events(connected, conversations(0, count))
    queries = drain_queries(connected)

    assert [sql for sql in queries if SINGLE_ROW_READ.search(sql)] == []
    enrolled = WritebackRecord.objects.filter(
        action=WritebackRecord.Action.ENROLLMENT, status=WritebackRecord.Status.SUCCEEDED
    )
    assert enrolled.count() == count
    prompt = fake_openai.requests[0].body["messages"][-1]["content"]
    assert "How much is it?" in prompt
    assert "Asked about pricing, visit" in prompt
    assert "50k-100k" in prompt
