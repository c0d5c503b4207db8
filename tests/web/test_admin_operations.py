"""Staff admin: connection actions, the usage page, the writeback queue actions and read-only records."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from agents.models import Organization
from integrations.models import ApiUsageDay, MarketoConnection, WritebackRecord
from integrations.marketo.quota import quota_day
from tests.web.helpers import PASSWORD, connect, make_agent, make_org, make_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    make_staff()
    client.login(username="cs@docket.example", password=PASSWORD)
    return client


def make_record(agent, status, number=1):
    return WritebackRecord.objects.create(
        organization=agent.organization, agent=agent, action=WritebackRecord.Action.ACTIVITY,
        dedupe_key=f"activity:conv_{number}", status=status, attempts=6,
        not_before=timezone.now() + timedelta(hours=1), email=f"visitor{number}@example.com",
        last_error="Marketo returned 1003",
    )


def run_action(client, model, action, ids):
    url = reverse(f"admin:{model}_changelist")
    return client.post(url, {"action": action, "_selected_action": [str(pk) for pk in ids]}, follow=True)


def test_retry_selected_resets_and_queues(staff_client, marketo_sandbox, monkeypatch):
    organization = make_org("acme")
    connect(organization, marketo_sandbox.url)
    agent = make_agent(organization, "agt_1")
    failed = make_record(agent, WritebackRecord.Status.FAILED)
    # Recorded at the queueing call, so the check holds on the ORM and the Redis broker alike.
    queued = []
    monkeypatch.setattr("integrations.writeback.queueing.async_task", lambda *args, **kwargs: queued.append(args))

    response = run_action(staff_client, "integrations_writebackrecord", "retry_selected", [failed.pk])

    failed.refresh_from_db()
    assert failed.status == WritebackRecord.Status.PENDING
    assert failed.attempts == 0
    assert failed.not_before is None
    assert queued == [("integrations.writeback.tasks.flush_connection_task", organization.marketo_connection.pk)]
    assert "Queued 1 record(s) for retry." in response.content.decode()


def test_retry_leaves_succeeded_alone(staff_client):
    agent = make_agent(make_org("acme"), "agt_1")
    done = make_record(agent, WritebackRecord.Status.SUCCEEDED)

    run_action(staff_client, "integrations_writebackrecord", "retry_selected", [done.pk])

    done.refresh_from_db()
    assert done.status == WritebackRecord.Status.SUCCEEDED


def test_skip_selected_names_staff_user(staff_client):
    agent = make_agent(make_org("acme"), "agt_1")
    pending = make_record(agent, WritebackRecord.Status.PENDING)

    run_action(staff_client, "integrations_writebackrecord", "skip_selected", [pending.pk])

    pending.refresh_from_db()
    assert pending.status == WritebackRecord.Status.SKIPPED
    assert pending.last_error == "Skipped by cs@docket.example"


def test_writeback_search_by_email_and_lead_id(staff_client):
    agent = make_agent(make_org("acme"), "agt_1")
    first = make_record(agent, WritebackRecord.Status.PENDING, 1)
    second = make_record(agent, WritebackRecord.Status.PENDING, 2)
    WritebackRecord.objects.filter(pk=second.pk).update(marketo_lead_id=4242)
    url = reverse("admin:integrations_writebackrecord_changelist")

    by_email = staff_client.get(url, {"q": "visitor1@example.com"}).context["cl"].result_list
    by_lead = staff_client.get(url, {"q": "4242"}).context["cl"].result_list

    assert [record.pk for record in by_email] == [first.pk]
    assert [record.pk for record in by_lead] == [second.pk]


def test_test_connection_action(staff_client, marketo_sandbox):
    organization = make_org("acme")
    connect(organization, marketo_sandbox.url)
    connection = organization.marketo_connection

    response = run_action(staff_client, "integrations_marketoconnection", "test_connection", [connection.pk])

    assert "Test connection passed for" in response.content.decode()


def test_run_setup_action_reports_failure(staff_client, marketo_sandbox):
    organization = make_org("acme")
    connect(organization, marketo_sandbox.url)
    MarketoConnection.objects.filter(organization=organization).update(client_id="unknown-client")

    response = run_action(staff_client, "agents_organization", "run_setup_again", [organization.pk])

    html = response.content.decode()
    assert "Setup failed for" in html
    assert "Marketo rejected the Client ID or Client Secret." in html


def test_usage_page_shows_counts_and_marketo_report(staff_client, marketo_sandbox):
    organization = make_org("acme")
    connect(organization, marketo_sandbox.url)
    connection = organization.marketo_connection
    calls = ApiUsageDay.objects.get(connection=connection, day=quota_day()).calls

    response = staff_client.get(reverse("admin:integrations_marketoconnection_usage", args=[connection.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert f"<td>{calls}</td>" in html
    assert "25000" in html
    assert "docket-api@corvane.example" in html


def test_usage_page_without_secret(staff_client):
    organization = make_org("acme")
    connection = MarketoConnection.objects.create(organization=organization, munchkin_id="417-QWE-902", client_id="c")

    html = staff_client.get(reverse("admin:integrations_marketoconnection_usage", args=[connection.pk])).content.decode()

    assert "No client secret is stored" in html


def test_add_organization_shows_token_once(staff_client):
    data = {
        "slug": "newco", "name": "NewCo",
        "marketo_connection-TOTAL_FORMS": "0", "marketo_connection-INITIAL_FORMS": "0",
        "marketo_connection-MIN_NUM_FORMS": "0", "marketo_connection-MAX_NUM_FORMS": "1",
        "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0", "memberships-MAX_NUM_FORMS": "1000",
    }

    response = staff_client.post(reverse("admin:agents_organization_add"), data, follow=True)

    organization = Organization.objects.get(slug="newco")
    html = response.content.decode()
    token = html.split("(shown once; give it to Docket): ")[1].split("<")[0].strip()
    assert organization.check_ingest_token(token)


def test_records_are_read_only(staff_client):
    agent = make_agent(make_org("acme"), "agt_1")
    record = make_record(agent, WritebackRecord.Status.FAILED)

    response = staff_client.post(reverse("admin:integrations_writebackrecord_change", args=[record.pk]), {"status": "succeeded"})

    record.refresh_from_db()
    assert record.status == WritebackRecord.Status.FAILED
    assert response.status_code in (200, 302, 403)


@pytest.mark.parametrize(
    "model", ["agents_conversation", "agents_meeting", "agents_inboundevent", "integrations_auditlogentry"]
)
def test_read_only_models_have_no_add(staff_client, model):
    response = staff_client.get(reverse(f"admin:{model}_add"))

    assert response.status_code == 403
