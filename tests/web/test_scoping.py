"""Each customer admin reaches only their own organization; staff without a membership go to the admin."""

import pytest
from django.urls import reverse

from agents.models import AgentWriteback
from tests.web.forms_data import agent_page_data
from tests.web.helpers import PASSWORD, make_agent, make_org, make_org_admin, make_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_orgs(client):
    org_a = make_org("alpha", "Alpha")
    org_b = make_org("beta", "Beta")
    agent_a = make_agent(org_a, "agt_a", "Alpha agent")
    agent_b = make_agent(org_b, "agt_b", "Beta agent")
    make_org_admin(org_a, "admin@alpha.example")
    client.login(username="admin@alpha.example", password=PASSWORD)
    return agent_a, agent_b


def test_other_orgs_agent_page_is_404(client, two_orgs):
    _, agent_b = two_orgs

    response = client.get(reverse("agent-marketo", args=[agent_b.pk]))

    assert response.status_code == 404


def test_other_orgs_agent_save_is_404(client, two_orgs):
    _, agent_b = two_orgs

    response = client.post(reverse("agent-marketo", args=[agent_b.pk]), agent_page_data())

    assert response.status_code == 404
    assert AgentWriteback.objects.get(agent=agent_b).marketo_enabled is False


def test_other_orgs_refresh_is_404(client, two_orgs):
    _, agent_b = two_orgs

    response = client.post(reverse("agent-marketo-refresh", args=[agent_b.pk]))

    assert response.status_code == 404


def test_agent_list_shows_own_agents_only(client, two_orgs):
    html = client.get(reverse("agent-list")).content.decode()

    assert "Alpha agent" in html
    assert "Beta agent" not in html


def test_own_agent_page_loads(client, two_orgs):
    agent_a, _ = two_orgs

    response = client.get(reverse("agent-marketo", args=[agent_a.pk]))

    assert response.status_code == 200


def test_customer_admin_cannot_open_django_admin(client, two_orgs):
    response = client.get(reverse("admin:index"))

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.parametrize("name", ["settings-marketo", "agent-list"])
def test_anonymous_redirected_to_login(client, name):
    response = client.get(reverse(name))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_staff_without_membership_sent_to_admin(client):
    make_staff()
    client.login(username="cs@docket.example", password=PASSWORD)

    response = client.get(reverse("settings-marketo"))

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")


def test_user_without_membership_gets_404(client, django_user_model):
    django_user_model.objects.create_user(username="nobody@example.com", password=PASSWORD)
    client.login(username="nobody@example.com", password=PASSWORD)

    response = client.get(reverse("agent-list"))

    assert response.status_code == 404
