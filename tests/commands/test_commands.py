"""The management commands operators run, through call_command."""

import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from agents.models import Organization, OrganizationMembership
from integrations.models import WritebackRecord
from tests.factories import SAMPLE_EVENTS, conversation_event, make_organization
from tests.writeback.conftest import DEMO_CONFIG

pytestmark = pytest.mark.django_db


def run(command, *args, stdin=None, **options) -> str:
    output = io.StringIO()
    if stdin is not None:
        import sys

        original = sys.stdin
        sys.stdin = io.StringIO(stdin)
        try:
            call_command(command, *args, stdout=output, **options)
        finally:
            sys.stdin = original
    else:
        call_command(command, *args, stdout=output, **options)
    return output.getvalue()


def test_create_organization_prints_token_once():
    output = run("create_organization", "acme", name="Acme Inc")

    organization = Organization.objects.get(slug="acme")
    token = output.strip().splitlines()[-1]
    assert token.startswith("dkt_")
    assert organization.check_ingest_token(token)
    assert token not in organization.ingest_token_hash


def test_create_organization_rejects_bad_slug():
    with pytest.raises(CommandError, match="Slug 'Acme Inc' is invalid"):
        run("create_organization", "Acme Inc", name="Acme")


def test_create_organization_rejects_duplicate():
    make_organization("acme")
    with pytest.raises(CommandError, match="already exists"):
        run("create_organization", "acme", name="Acme")


def test_create_org_admin_with_password_stdin():
    organization, _ = make_organization("acme")

    run("create_org_admin", "Admin@Acme.example", org="acme", password_stdin=True, stdin="a-long-passphrase-2026\n")

    user = get_user_model().objects.get(username="admin@acme.example")
    assert user.check_password("a-long-passphrase-2026")
    assert not user.is_staff
    assert OrganizationMembership.objects.get(user=user).organization == organization


def test_create_org_admin_unknown_org():
    with pytest.raises(CommandError, match="Organization 'nope' not found"):
        run("create_org_admin", "a@b.example", org="nope")


def test_ingest_events_reports_each_rejected_line(tmp_path):
    make_organization("acme")
    bad_time = conversation_event(event_id="evt_2", conversation_id="c2")
    bad_time["occurred_at"] = "2026-11-02T09:00:00"
    lines = [json.dumps(conversation_event()), "{broken json", json.dumps(bad_time), ""]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")

    output = run("ingest_events", str(path), org="acme")

    assert "accepted 1, duplicates 0, rejected 2" in output
    assert "line 2 is not valid JSON" in output
    assert "line 3 (event_id evt_2): occurred_at" in output


def test_ingest_events_from_stdin():
    make_organization("acme")
    output = run("ingest_events", "-", org="acme", stdin=json.dumps([conversation_event()]))
    assert "accepted 1" in output


def test_ingest_events_missing_file():
    make_organization("acme")
    with pytest.raises(CommandError, match="Can't read"):
        run("ingest_events", "/nonexistent/events.jsonl", org="acme")


def test_ingest_samples_twice_reports_duplicates():
    make_organization("acme")
    run("ingest_events", str(SAMPLE_EVENTS), org="acme")

    output = run("ingest_events", str(SAMPLE_EVENTS), org="acme")

    assert "accepted 0, duplicates 40, rejected 0" in output


def test_apply_and_export_round_trip():
    organization, _ = make_organization("acme")
    document = json.loads(DEMO_CONFIG.read_text())
    path = DEMO_CONFIG

    run("apply_writeback_config", str(path), org="acme")
    exported = json.loads(run("export_writeback_config", org="acme"))

    pricing = next(agent for agent in exported["agents"] if agent["id"] == "agt_p7k2m9x4q1ra")
    expected = document["agents"][0]
    assert pricing["activity_fields"] == expected["activity_fields"]
    assert pricing["field_updates"] == expected["field_updates"]
    assert [rule["id"] for rule in pricing["enrollment_rules"]] == ["default-conversation", "default-meeting"]
    assert organization.agents.count() == 3


def test_apply_rejects_whole_file_listing_every_problem(tmp_path):
    make_organization("acme")
    document = {
        "agents": [
            {"id": "agt_ok", "lead_sync": True},
            {"id": "agt_bad", "lead_sync": "yes", "activity_fields": ["utm_banana"]},
        ]
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(document))

    with pytest.raises(CommandError) as caught:
        run("apply_writeback_config", str(path), org="acme")

    message = str(caught.value)
    assert "agent agt_bad: lead_sync" in message
    assert "agent agt_bad: activity_fields[0]" in message
    assert Organization.objects.get(slug="acme").agents.count() == 0


def test_apply_refuses_sixth_rule(tmp_path):
    make_organization("acme")
    rules = [{"trigger": "conversation_completed", "program": f"Program {n}"} for n in range(6)]
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"agents": [{"id": "agt_1", "enrollment_rules": rules}]}))

    with pytest.raises(CommandError, match="Each agent can have up to 5 program enrollment rules."):
        run("apply_writeback_config", str(path), org="acme")


def test_apply_refuses_more_than_20_fields_without_connection(tmp_path):
    make_organization("acme")
    fields = ["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "click_id", "click_id_type", "first_interaction"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"agents": [{"id": "agt_1", "activity_fields": fields}]}))

    with pytest.raises(CommandError, match="Could not save the configuration as the Activity has more than 20 fields configured."):
        run("apply_writeback_config", str(path), org="acme")


def test_export_unknown_agent():
    make_organization("acme")
    with pytest.raises(CommandError, match="Agent 'agt_x' not found"):
        run("export_writeback_config", org="acme", agent="agt_x")


def test_drain_with_nothing_queued():
    make_organization("acme")
    output = run("drain_writeback", org="acme", timeout=5)
    assert "written: 0" in output
    assert "pending: 0" in output


def test_drain_rejects_bad_timeout():
    with pytest.raises(CommandError, match="--timeout must be a positive"):
        run("drain_writeback", timeout=0)


def test_backfill_dry_run_changes_nothing():
    make_organization("acme")
    run("ingest_events", str(SAMPLE_EVENTS), org="acme")

    output = run("backfill_marketo", org="acme", dry_run=True)

    assert "Would queue" in output
    assert WritebackRecord.objects.count() == 0


def test_backfill_rejects_bad_date():
    make_organization("acme")
    with pytest.raises(CommandError, match="is not a date like"):
        run("backfill_marketo", org="acme", since="last week")


def test_ingest_events_rejects_unreadable_number(tmp_path):
    make_organization("acme")
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(conversation_event()) + "\n" + '{"event_id": ' + "9" * 5000 + "}\n", encoding="utf-8")

    output = run("ingest_events", str(path), org="acme")

    assert "accepted 1, duplicates 0, rejected 1" in output
    assert "line 2 can't be read as JSON" in output


def test_create_org_admin_rejects_invalid_email():
    make_organization("acme")
    with pytest.raises(CommandError, match="'not-an-email' is not a valid email address"):
        run("create_org_admin", "not-an-email", org="acme")


def test_apply_rejects_repeated_rule(tmp_path):
    make_organization("acme")
    rule = {"trigger": "conversation_completed", "program": "Docket Engagement", "status": "Engaged"}
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"agents": [{"id": "agt_1", "enrollment_rules": [rule, dict(rule)]}]}))

    with pytest.raises(CommandError, match=r"enrollment_rules\[1\]: repeats rule 1"):
        run("apply_writeback_config", str(path), org="acme")


def test_sandbox_rejects_invalid_port():
    with pytest.raises(CommandError, match="99999 is not a port number"):
        run("marketo_sandbox", "--port", "99999")
