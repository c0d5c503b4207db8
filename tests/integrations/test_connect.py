"""Tests for the Marketo connection flow, run against the bundled sandbox over HTTP."""

import json
import logging
import socket

from datetime import timedelta

import pytest
import requests
from django.core.management import CommandError, call_command
from django.utils import timezone

from integrations.marketo import messages
from integrations.marketo.assets import CONVERSATION_ACTIVITY, FOLDER_DESCRIPTION, MEETING_ACTIVITY
from integrations.marketo.client import clear_token_cache
from integrations.marketo.connect import ConnectionFlowError, check_connection, connect_marketo, run_setup
from integrations.marketo.quota import next_quota_reset
from integrations.marketo.sandbox.seed import default_seed
from integrations.marketo.sandbox.server import SandboxServer
from integrations.models import AuditLogEntry, MarketoConnection
from tests.factories import make_organization

MUNCHKIN_ID = "417-QWE-902"
CLIENT_ID = "docket-demo-client"
CLIENT_SECRET = "docket-demo-secret"
ALL_PERMISSIONS = [
    "Read-Only Assets",
    "Read-Write Assets",
    "Read-Write Person",
    "Read-Write Activity",
    "Read-Write Activity Metadata",
]


# --- Fixtures and helpers ----------------------------------------------------------

@pytest.fixture(autouse=True)
def _fast_client(settings):
    # One retry with a short backoff keeps failure tests quick while still
    # going through the client's retry path.
    settings.MARKETO_MAX_CALL_ATTEMPTS = 2
    settings.MARKETO_BACKOFF_BASE_SECONDS = 0.01
    settings.MARKETO_BACKOFF_MAX_SECONDS = 0.02
    settings.MARKETO_CONNECT_TIMEOUT_SECONDS = 2.0
    settings.MARKETO_READ_TIMEOUT_SECONDS = 10.0
    clear_token_cache()
    yield
    clear_token_cache()


@pytest.fixture
def start_sandbox(settings):
    """Start a sandbox with a seed and allow its origin; every server stops after the test."""
    servers = []

    def start(seed: dict | None = None) -> SandboxServer:
        server = SandboxServer(seed=seed if seed is not None else default_seed(), port=0).start()
        servers.append(server)
        settings.MARKETO_ALLOWED_BASE_URLS = [server.url for server in servers]
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def organization(db):
    organization, _token = make_organization("corvane", "Corvane")
    return organization


def connect(organization, server, **overrides):
    arguments = {
        "munchkin_id": MUNCHKIN_ID,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "base_url": server.url,
        "actor": "admin@corvane.example",
    }
    arguments.update(overrides)
    return connect_marketo(organization, **arguments)


def connect_error(organization, server, **overrides) -> str:
    with pytest.raises(ConnectionFlowError) as caught:
        connect(organization, server, **overrides)
    return caught.value.message


def seed_with_permissions(permissions) -> dict:
    seed = default_seed()
    seed["api_clients"][0]["permissions"] = list(permissions)
    return seed


def docket_channel(seed: dict) -> dict:
    return next(channel for channel in seed["channels"] if channel["name"] == "Docket")


def add_fault(server: SandboxServer, **fault):
    response = requests.post(f"{server.url}/_sandbox/faults", json=fault, timeout=5)
    response.raise_for_status()


def sandbox_state(server: SandboxServer) -> dict:
    return requests.get(f"{server.url}/_sandbox/state", timeout=5).json()["state"]


def folders_named(server, name):
    return [folder for folder in sandbox_state(server)["folders"] if folder["name"] == name]


def programs_named(server, name):
    return [program for program in sandbox_state(server)["programs"] if program["name"] == name]


def activity_type(server, api_name):
    return server.state.activity_type(api_name)


def attribute_names(version: dict) -> set[str]:
    return {attribute["apiName"] for attribute in version["attributes"]}


def conflicting_type(**changes) -> dict:
    """Return a seed activity type with apiName docketConversation, changed by `changes`."""
    spec = CONVERSATION_ACTIVITY
    entry = {
        "apiName": spec.api_name,
        "name": spec.name,
        "triggerName": spec.trigger_name,
        "filterName": spec.filter_name,
        "primaryAttribute": spec.primary.as_marketo(),
        "attributes": [attribute.as_marketo() for attribute in spec.attributes],
        "status": "approved",
    }
    entry.update(changes)
    return entry


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- Success ----------------------------------------------------------------------

@pytest.mark.django_db
def test_connect_creates_assets_on_default_seed(organization, start_sandbox):
    server = start_sandbox()

    result = connect(organization, server)

    folders = folders_named(server, "Docket")
    assert len(folders) == 1
    folder = folders[0]
    assert folder["path"] == "/Marketing Activities/Default/Docket"
    assert folder["description"] == FOLDER_DESCRIPTION

    programs = programs_named(server, "Docket Engagement")
    assert len(programs) == 1
    program = programs[0]
    assert program["typeCode"] == "program"
    assert program["channel"] == "Docket"
    assert program["folderId"] == folder["id"]

    conversation = activity_type(server, "docketConversation")
    assert conversation["draft"] is None
    assert conversation["approved"]["triggerName"] == "Has Docket Conversation"
    assert conversation["approved"]["primaryAttribute"]["apiName"] == "conversationId"
    assert 1 + len(conversation["approved"]["attributes"]) == 13
    meeting = activity_type(server, "docketMeetingBooked")
    assert meeting["draft"] is None
    assert attribute_names(meeting["approved"]) == {attribute.api_name for attribute in MEETING_ACTIVITY.attributes}

    connection = MarketoConnection.objects.get(organization=organization)
    assert connection.status == MarketoConnection.Status.CONNECTED
    assert connection.last_error == ""
    assert connection.folder_id == folder["id"]
    assert connection.program_id == program["id"]
    assert connection.program_type == "Default"
    assert connection.channel_name == "Docket"
    assert connection.conversation_activity_type_id == conversation["id"]
    assert connection.meeting_activity_type_id == meeting["id"]
    assert connection.connected_at is not None
    assert connection.last_checked_at is not None
    assert connection.base_url_override == server.url
    assert connection.get_client_secret() == CLIENT_SECRET
    assert connection.status_message.startswith(f"Connected to Marketo {MUNCHKIN_ID}. Created: ")
    assert len(result.created) == 4
    assert result.adopted == []
    assert result.usage_warning == ""


@pytest.mark.django_db
def test_connect_writes_audit_entry_without_secret(organization, start_sandbox):
    server = start_sandbox()

    connect(organization, server)

    entry = AuditLogEntry.objects.get(organization=organization)
    assert entry.action == "marketo.connect"
    assert entry.actor == "admin@corvane.example"
    assert entry.changes["munchkin_id"] == MUNCHKIN_ID
    assert entry.changes["status"] == "connected"
    assert CLIENT_SECRET not in json.dumps(entry.changes)


@pytest.mark.django_db
def test_connect_never_logs_secret(organization, start_sandbox, caplog):
    server = start_sandbox()

    with caplog.at_level(logging.DEBUG):
        connect(organization, server)

    assert CLIENT_SECRET not in caplog.text
    assert f"org corvane (Munchkin {MUNCHKIN_ID}): folder started" in caplog.text


@pytest.mark.django_db
def test_second_run_adopts_everything(organization, start_sandbox):
    server = start_sandbox()
    first = connect(organization, server)

    second = connect(organization, server)

    assert len(folders_named(server, "Docket")) == 1
    assert len(programs_named(server, "Docket Engagement")) == 1
    assert len(sandbox_state(server)["activity_types"]) == 2
    assert second.created == []
    assert len(second.adopted) == 4
    connection = MarketoConnection.objects.get(organization=organization)
    assert connection.status == MarketoConnection.Status.CONNECTED
    assert connection.program_id == first.connection.program_id
    assert connection.status_message.startswith(f"Connected to Marketo {MUNCHKIN_ID}. Adopted: ")
    assert AuditLogEntry.objects.filter(action="marketo.reconnect").count() == 1


@pytest.mark.django_db
def test_run_setup_creates_nothing_twice(organization, start_sandbox):
    server = start_sandbox()
    connection = connect(organization, server).connection

    result = run_setup(connection)

    assert result.created == []
    assert len(folders_named(server, "Docket")) == 1
    assert len(programs_named(server, "Docket Engagement")) == 1
    assert len(sandbox_state(server)["activity_types"]) == 2


@pytest.mark.django_db
def test_connect_follows_nurture_channel(organization, start_sandbox):
    seed = default_seed()
    docket_channel(seed)["applicableProgramType"] = "nurture"
    server = start_sandbox(seed)

    connect(organization, server)

    program = programs_named(server, "Docket Engagement")[0]
    assert program["typeCode"] == "nurture"
    assert MarketoConnection.objects.get(organization=organization).program_type == "Engagement"


@pytest.mark.django_db
def test_connect_adopts_program_after_lost_response(organization, start_sandbox):
    server = start_sandbox()
    # The program is created but the response never arrives, so the client
    # can't tell whether the create went through.
    add_fault(server, path="/rest/asset/v1/programs.json", method="POST", mode="drop_after_apply")

    result = connect(organization, server)

    assert len(programs_named(server, "Docket Engagement")) == 1
    assert any(line.startswith('program "Docket Engagement"') for line in result.adopted)


@pytest.mark.django_db
def test_folder_create_error_reported(organization, start_sandbox):
    server = start_sandbox()
    add_fault(
        server, path="/rest/asset/v1/folders.json", method="POST", code="709",
        message="Folder with the same name already exists",
    )

    message = connect_error(organization, server)

    # Looking the folder up again finds none, so Marketo's error is reported.
    assert message.startswith('Marketo returned an error while creating the folder "Docket": ')
    assert "Folder with the same name already exists" in message
    assert folders_named(server, "Docket") == []


@pytest.mark.django_db
def test_usage_warning_when_others_use_quota(organization, start_sandbox):
    server = start_sandbox()
    limiter = server.state.limiter
    limiter.calls_by_day[limiter.today()]["crm-sync@corvane.example"] = 30_000

    result = connect(organization, server)

    expected = messages.usage_warning(30_000, 50_000)
    assert result.usage_warning == expected
    assert "30,000 of this instance's 50,000 daily API calls today (60%)" in expected
    connection = MarketoConnection.objects.get(organization=organization)
    assert connection.usage_warning == expected
    assert connection.status == MarketoConnection.Status.CONNECTED


@pytest.mark.django_db
def test_no_usage_warning_below_half(organization, start_sandbox):
    server = start_sandbox()
    limiter = server.state.limiter
    limiter.calls_by_day[limiter.today()]["crm-sync@corvane.example"] = 24_000

    result = connect(organization, server)

    assert result.usage_warning == ""


# --- Input ----------------------------------------------------------------------

@pytest.mark.django_db
def test_invalid_munchkin_id_rejected(organization, start_sandbox):
    server = start_sandbox()

    message = connect_error(organization, server, munchkin_id="417-QWE-90")

    assert message == messages.invalid_munchkin_id("417-QWE-90")
    assert "'417-QWE-90'" in message
    assert not MarketoConnection.objects.filter(organization=organization).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "label"), [("client_id", "Client ID"), ("client_secret", "Client Secret")])
def test_missing_credential_rejected(organization, start_sandbox, field, label):
    server = start_sandbox()

    message = connect_error(organization, server, **{field: "  "})

    assert message == messages.missing_value(label)
    assert message.startswith(f"The {label} is missing.")


@pytest.mark.django_db
def test_base_url_not_allowed(organization, start_sandbox, settings):
    server = start_sandbox()
    settings.MARKETO_ALLOWED_BASE_URLS = []

    message = connect_error(organization, server)

    assert message.startswith(f"Base URL {server.url!r} is not allowed.")
    assert f"add {server.url} to it" in message
    assert not MarketoConnection.objects.filter(organization=organization).exists()


@pytest.mark.django_db
def test_base_url_with_rest_suffix_accepted(organization, start_sandbox):
    server = start_sandbox()

    connect(organization, server, base_url=f"{server.url}/rest")

    assert MarketoConnection.objects.get(organization=organization).base_url_override == server.url


# --- Credentials and network -----------------------------------------------------

@pytest.mark.django_db
def test_wrong_secret_rejected(organization, start_sandbox):
    server = start_sandbox()

    message = connect_error(organization, server, client_secret="not-the-secret")

    assert message == messages.CREDENTIALS_REJECTED
    assert "Admin → LaunchPoint" in message
    assert "View Details" in message
    connection = MarketoConnection.objects.get(organization=organization)
    assert connection.status == MarketoConnection.Status.NOT_CONNECTED
    assert connection.last_error == message


@pytest.mark.django_db
def test_wrong_secret_after_working_secret(organization, start_sandbox):
    server = start_sandbox()
    connect(organization, server)

    message = connect_error(organization, server, client_secret="rotated-wrong")

    assert message == messages.new_credentials_not_saved(messages.CREDENTIALS_REJECTED)
    connection = MarketoConnection.objects.get(organization=organization)
    # A typo in new credentials must not stop a working writeback.
    assert connection.status == MarketoConnection.Status.CONNECTED
    assert connection.get_client_secret() == "docket-demo-secret"
    assert connection.paused_until is None
    assert connection.last_error == message


@pytest.mark.django_db
def test_ip_allowlist_603_on_stats(organization, start_sandbox):
    server = start_sandbox()
    add_fault(server, path="/rest/v1/stats/usage.json", code="603", message="Access denied")

    message = connect_error(organization, server)

    assert message == messages.IP_ALLOWLIST_BLOCKED


@pytest.mark.django_db
def test_unreachable_sandbox(organization, settings):
    url = f"http://127.0.0.1:{free_port()}"
    settings.MARKETO_ALLOWED_BASE_URLS = [url]

    with pytest.raises(ConnectionFlowError) as caught:
        connect_marketo(
            organization, munchkin_id=MUNCHKIN_ID, client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET, base_url=url,
        )

    message = caught.value.message
    assert message.startswith(f"Could not reach Marketo at {url}: ")
    assert message.endswith("network access, then try again.")
    assert CLIENT_SECRET not in message


# --- Permissions ------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize(
    ("removed", "permission"),
    [
        (["Read-Only Assets", "Read-Write Assets"], "Read-Only Assets"),
        (["Read-Write Person"], "Read-Write Person"),
        (["Read-Write Activity"], "Read-Write Activity"),
        (["Read-Write Activity Metadata"], "Read-Write Activity Metadata"),
    ],
)
def test_missing_permission_named(organization, start_sandbox, removed, permission):
    server = start_sandbox(seed_with_permissions(p for p in ALL_PERMISSIONS if p not in removed))

    message = connect_error(organization, server)

    assert message == messages.missing_permission(permission)
    assert message.startswith(f"The Marketo API role is missing the {permission} permission.")
    assert folders_named(server, "Docket") == []


@pytest.mark.django_db
def test_read_only_activity_metadata_cannot_create(organization, start_sandbox):
    permissions = [p for p in ALL_PERMISSIONS if p != "Read-Write Activity Metadata"]
    server = start_sandbox(seed_with_permissions([*permissions, "Read-Only Activity Metadata"]))

    message = connect_error(organization, server)

    # The read probes pass, so the first write is where the 603 shows.
    assert message == messages.missing_permission("Read-Write Activity Metadata")
    assert activity_type(server, "docketConversation") is None


@pytest.mark.django_db
def test_read_only_assets_cannot_create(organization, start_sandbox):
    server = start_sandbox(seed_with_permissions(p for p in ALL_PERMISSIONS if p != "Read-Write Assets"))

    message = connect_error(organization, server)

    assert message == messages.assets_read_only('folder "Docket"', "Default")
    assert "grant Access API → Read-Write Assets" in message
    assert 'create the folder "Docket" under Marketing Activities' in message
    assert '"Docket Engagement" on channel "Docket" by hand' in message
    assert folders_named(server, "Docket") == []
    assert sandbox_state(server)["activity_types"] == []


@pytest.mark.django_db
def test_read_only_assets_adopts_hand_made(organization, start_sandbox):
    seed = seed_with_permissions(p for p in ALL_PERMISSIONS if p != "Read-Write Assets")
    seed["folders"].append({"name": "Docket", "parent": "Default", "description": "Made by hand"})
    seed["programs"].append({"name": "Docket Engagement", "type": "Default", "channel": "Docket", "folder": "Docket"})
    server = start_sandbox(seed)

    result = connect(organization, server)

    assert len(result.adopted) == 2
    assert len(result.created) == 2
    connection = MarketoConnection.objects.get(organization=organization)
    assert connection.status == MarketoConnection.Status.CONNECTED
    assert connection.program_id == programs_named(server, "Docket Engagement")[0]["id"]
    assert connection.folder_id == folders_named(server, "Docket")[0]["id"]


# --- Channel ----------------------------------------------------------------------

@pytest.mark.django_db
def test_missing_channel(organization, start_sandbox):
    seed = default_seed()
    seed["channels"] = [channel for channel in seed["channels"] if channel["name"] != "Docket"]
    seed["programs"] = [program for program in seed["programs"] if program["channel"] != "Docket"]
    server = start_sandbox(seed)

    message = connect_error(organization, server)

    assert message == (
        "The Docket channel does not exist in Marketo. Please refer to the integration guide "
        "for prerequisites."
    )
    assert folders_named(server, "Docket") == []


@pytest.mark.django_db
def test_channel_name_is_case_sensitive(organization, start_sandbox):
    seed = default_seed()
    docket_channel(seed)["name"] = "docket"
    server = start_sandbox(seed)

    message = connect_error(organization, server)

    assert message == messages.CHANNEL_MISSING


@pytest.mark.django_db
def test_channel_without_meeting_booked(organization, start_sandbox):
    seed = default_seed()
    channel = docket_channel(seed)
    channel["progressionStatuses"] = [
        status for status in channel["progressionStatuses"] if status["name"] != "Meeting Booked"
    ]
    server = start_sandbox(seed)

    message = connect_error(organization, server)

    assert message == (
        "The Docket channel does not exist in Marketo. Please refer to the integration guide "
        'for prerequisites. The channel has no "Meeting Booked" status.'
    )


@pytest.mark.django_db
def test_engaged_after_meeting_booked(organization, start_sandbox):
    seed = default_seed()
    for status in docket_channel(seed)["progressionStatuses"]:
        if status["name"] == "Engaged":
            status["step"] = 20
        elif status["name"] == "Meeting Booked":
            status["step"] = 10
    server = start_sandbox(seed)

    message = connect_error(organization, server)

    assert message == (
        "The Docket channel does not exist in Marketo. Please refer to the integration guide "
        'for prerequisites. "Engaged" (step 20) must come before "Meeting Booked" (step 10).'
    )


# --- Program ----------------------------------------------------------------------

@pytest.mark.django_db
def test_program_with_wrong_channel_conflicts(organization, start_sandbox):
    seed = default_seed()
    seed["folders"].append({"name": "Docket", "parent": "Default"})
    seed["programs"].append(
        {"name": "Docket Engagement", "type": "Engagement", "channel": "Nurture", "folder": "Docket"}
    )
    server = start_sandbox(seed)
    before = programs_named(server, "Docket Engagement")

    message = connect_error(organization, server)

    assert message.startswith('A program named "Docket Engagement" already exists in Marketo (id ')
    assert 'its type is "Engagement", not "Default"' in message
    assert 'its channel is "Nurture", not "Docket"' in message
    assert "Docket changed nothing." in message
    assert programs_named(server, "Docket Engagement") == before
    assert sandbox_state(server)["activity_types"] == []
    connection = MarketoConnection.objects.get(organization=organization)
    assert connection.status == MarketoConnection.Status.NOT_CONNECTED
    assert connection.program_id is None
    assert connection.last_error == message


@pytest.mark.django_db
def test_program_in_other_folder_conflicts(organization, start_sandbox):
    seed = default_seed()
    seed["programs"].append({"name": "Docket Engagement", "type": "Default", "channel": "Docket", "folder": "Events"})
    server = start_sandbox(seed)

    message = connect_error(organization, server)

    assert 'it is in the folder "Events", not in the folder "Docket" (id ' in message
    assert "type is" not in message
    assert len(programs_named(server, "Docket Engagement")) == 1


@pytest.mark.django_db
def test_required_tag_named(organization, start_sandbox):
    seed = default_seed()
    seed["tag_types"][0]["required"] = True
    server = start_sandbox(seed)

    message = connect_error(organization, server)

    assert message == messages.program_tag_required(
        "Tag type 'Region' is required for Default programs; send it in tags",
        "Default", "Region", ["AMER", "EMEA", "APAC"],
    )
    assert 'requires the tag "Region" on Default programs' in message
    assert '(allowed values include "AMER", "EMEA", "APAC")' in message
    assert programs_named(server, "Docket Engagement") == []


# --- Activity types ---------------------------------------------------------------

@pytest.mark.django_db
def test_conflicting_activity_type(organization, start_sandbox):
    seed = default_seed()
    seed["activity_types"] = [conflicting_type(triggerName="Chats with Docket")]
    server = start_sandbox(seed)

    message = connect_error(organization, server)

    assert message.startswith('A custom activity type "docketConversation" already exists in Marketo but ')
    assert 'its trigger name is "Chats with Docket", not "Has Docket Conversation"' in message
    assert "Docket changed nothing." in message
    assert activity_type(server, "docketMeetingBooked") is None
    assert activity_type(server, "docketConversation")["approved"]["triggerName"] == "Chats with Docket"


@pytest.mark.django_db
def test_activity_type_wrong_primary(organization, start_sandbox):
    seed = default_seed()
    seed["activity_types"] = [
        conflicting_type(primaryAttribute={"apiName": "visitorEmail", "name": "Visitor Email", "dataType": "email"},
                         attributes=[])
    ]
    server = start_sandbox(seed)

    message = connect_error(organization, server)

    assert 'its primary attribute is "visitorEmail", not "conversationId"' in message
    assert activity_type(server, "docketConversation")["approved"]["attributes"] == []


@pytest.mark.django_db
def test_activity_trigger_name_taken(organization, start_sandbox):
    seed = default_seed()
    seed["activity_types"] = [conflicting_type(apiName="otherChat", name="Other Chat")]
    server = start_sandbox(seed)

    message = connect_error(organization, server)

    assert message == messages.activity_type_name_taken(
        "Docket Conversation", "trigger name", "Has Docket Conversation", "otherChat"
    )
    assert activity_type(server, "docketConversation") is None


@pytest.mark.django_db
def test_activity_type_missing_attributes_added(organization, start_sandbox):
    seed = default_seed()
    seed["activity_types"] = [conflicting_type(attributes=[CONVERSATION_ACTIVITY.attributes[0].as_marketo()])]
    server = start_sandbox(seed)

    result = connect(organization, server)

    conversation = activity_type(server, "docketConversation")
    assert conversation["draft"] is None
    assert attribute_names(conversation["approved"]) == {
        attribute.api_name for attribute in CONVERSATION_ACTIVITY.attributes
    }
    assert any(line.startswith('activity type "Docket Conversation"') for line in result.updated)
    assert "added 11 missing attributes" in result.summary


@pytest.mark.django_db
def test_activity_attribute_data_type_conflict(organization, start_sandbox):
    seed = default_seed()
    entry = conflicting_type()
    entry["attributes"] = [
        {**attribute, "dataType": "string"} if attribute["apiName"] == "conversationDuration" else attribute
        for attribute in entry["attributes"]
    ]
    seed["activity_types"] = [entry]
    server = start_sandbox(seed)

    message = connect_error(organization, server)

    assert 'its attribute "conversationDuration" data type is "string", not "integer"' in message


@pytest.mark.django_db
def test_activity_attribute_limit_reached(organization, start_sandbox):
    seed = default_seed()
    extras = [
        {"apiName": f"custom{number}", "name": f"Custom {number}", "dataType": "string"} for number in range(19)
    ]
    seed["activity_types"] = [conflicting_type(attributes=[CONVERSATION_ACTIVITY.attributes[0].as_marketo(), *extras])]
    server = start_sandbox(seed)

    message = connect_error(organization, server)

    assert message == messages.activity_attribute_limit("Docket Conversation")
    assert len(activity_type(server, "docketConversation")["approved"]["attributes"]) == 20


@pytest.mark.django_db
def test_activity_type_extra_attributes_kept(organization, start_sandbox):
    seed = default_seed()
    extra = {"apiName": "leadScore", "name": "Lead Score", "dataType": "integer"}
    entry = conflicting_type()
    entry["attributes"] = entry["attributes"] + [extra]
    seed["activity_types"] = [entry]
    server = start_sandbox(seed)

    result = connect(organization, server)

    assert "leadScore" in attribute_names(activity_type(server, "docketConversation")["approved"])
    assert any(line.startswith('activity type "Docket Conversation"') for line in result.adopted)


@pytest.mark.django_db
def test_draft_activity_type_approved(organization, start_sandbox):
    seed = default_seed()
    seed["activity_types"] = [conflicting_type(status="draft", attributes=[])]
    server = start_sandbox(seed)

    connect(organization, server)

    conversation = activity_type(server, "docketConversation")
    assert conversation["draft"] is None
    assert conversation["approved"] is not None
    assert len(conversation["approved"]["attributes"]) == 12
    assert MarketoConnection.objects.get(organization=organization).conversation_activity_type_id == conversation["id"]


@pytest.mark.django_db
def test_activity_type_limit_reached(organization, start_sandbox):
    seed = default_seed()
    seed["activity_types"] = [
        {
            "apiName": f"otherType{number}",
            "name": f"Other Type {number}",
            "triggerName": f"Does Other {number}",
            "filterName": f"Did Other {number}",
            "primaryAttribute": {"apiName": "thing", "name": "Thing", "dataType": "string"},
        }
        for number in range(10)
    ]
    server = start_sandbox(seed)

    message = connect_error(organization, server)

    assert message == messages.activity_type_limit("Docket Conversation")
    assert "no free custom activity type slot" in message
    assert "(10 in most subscriptions, error 1027)" in message


# --- Checking again ---------------------------------------------------------------

@pytest.mark.django_db
def test_check_marks_needs_attention_then_recovers(organization, start_sandbox):
    server = start_sandbox()
    connection = connect(organization, server).connection
    requests.post(
        f"{server.url}/_sandbox/permissions",
        json={"client_id": CLIENT_ID, "revoke": ["Read-Write Person"]},
        timeout=5,
    ).raise_for_status()

    with pytest.raises(ConnectionFlowError) as caught:
        check_connection(connection, actor="admin@corvane.example")

    connection.refresh_from_db()
    assert caught.value.message == messages.missing_permission("Read-Write Person")
    assert connection.status == MarketoConnection.Status.NEEDS_ATTENTION
    assert connection.last_error == caught.value.message
    assert connection.program_id is not None

    requests.post(
        f"{server.url}/_sandbox/permissions",
        json={"client_id": CLIENT_ID, "grant": ["Read-Write Person"]},
        timeout=5,
    ).raise_for_status()
    check_connection(connection)

    connection.refresh_from_db()
    assert connection.status == MarketoConnection.Status.CONNECTED
    assert connection.last_error == ""
    assert AuditLogEntry.objects.filter(action="marketo.check").count() == 2


@pytest.mark.django_db
def test_passing_check_lifts_attention_pause(organization, start_sandbox):
    server = start_sandbox()
    connection = connect(organization, server).connection
    MarketoConnection.objects.filter(pk=connection.pk).update(
        status=MarketoConnection.Status.NEEDS_ATTENTION,
        paused_until=timezone.now() + timedelta(days=3650),
        pause_reason="Marketo denied access",
    )
    connection.refresh_from_db()

    check_connection(connection)

    connection.refresh_from_db()
    assert connection.status == MarketoConnection.Status.CONNECTED
    assert connection.paused_until is None
    assert connection.pause_reason == ""


@pytest.mark.django_db
def test_passing_check_keeps_quota_pause(organization, start_sandbox):
    server = start_sandbox()
    connection = connect(organization, server).connection
    reset = next_quota_reset(timezone.now())
    MarketoConnection.objects.filter(pk=connection.pk).update(paused_until=reset, pause_reason="Quota used up")
    connection.refresh_from_db()

    check_connection(connection)

    connection.refresh_from_db()
    assert connection.paused_until == reset
    assert connection.pause_reason == "Quota used up"


@pytest.mark.django_db
def test_run_setup_keeps_usage_warning(organization, start_sandbox):
    server = start_sandbox()
    limiter = server.state.limiter
    limiter.calls_by_day[limiter.today()]["crm-sync@corvane.example"] = 40_000
    connection = connect(organization, server).connection

    result = run_setup(connection)

    connection.refresh_from_db()
    assert result.usage_warning is None
    assert connection.usage_warning.startswith("Other API users have already made 40,000")


@pytest.mark.django_db
def test_reconnect_audit_marks_secret_change(organization, start_sandbox):
    server = start_sandbox()
    connect(organization, server)

    with pytest.raises(ConnectionFlowError):
        connect(organization, server, client_secret="rotated-wrong")

    entry = AuditLogEntry.objects.filter(action="marketo.reconnect").get()
    assert entry.changes["changed"] == {"client_secret": "changed"}
    assert entry.changes["error"] == messages.CREDENTIALS_REJECTED
    assert "rotated-wrong" not in json.dumps(entry.changes)


# --- Command ----------------------------------------------------------------------

@pytest.mark.django_db
def test_command_prints_assets_with_ids(organization, start_sandbox, capsys):
    server = start_sandbox()

    call_command(
        "connect_marketo", "--org", "corvane", "--munchkin-id", MUNCHKIN_ID, "--client-id", CLIENT_ID,
        "--client-secret", CLIENT_SECRET, "--base-url", server.url,
    )

    output = capsys.readouterr()
    connection = MarketoConnection.objects.get(organization=organization)
    assert f'Created folder "Docket" (id {connection.folder_id})' in output.out
    assert f'Created program "Docket Engagement" (id {connection.program_id})' in output.out
    assert f'(id {connection.conversation_activity_type_id})' in output.out
    assert f"Connected corvane to Marketo {MUNCHKIN_ID}" in output.out
    assert CLIENT_SECRET not in output.out + output.err


@pytest.mark.django_db
def test_command_fails_with_flow_message(organization, start_sandbox, capsys):
    server = start_sandbox()

    with pytest.raises(CommandError) as caught:
        call_command(
            "connect_marketo", "--org", "corvane", "--munchkin-id", MUNCHKIN_ID, "--client-id", CLIENT_ID,
            "--client-secret", "wrong-secret-value", "--base-url", server.url,
        )

    assert str(caught.value) == messages.CREDENTIALS_REJECTED
    output = capsys.readouterr()
    assert "wrong-secret-value" not in output.out + output.err + str(caught.value)


@pytest.mark.django_db
def test_command_unknown_organization(db):
    with pytest.raises(CommandError) as caught:
        call_command(
            "connect_marketo", "--org", "nobody", "--munchkin-id", MUNCHKIN_ID, "--client-id", CLIENT_ID,
            "--client-secret", CLIENT_SECRET,
        )

    assert str(caught.value) == messages.organization_not_found("nobody")
