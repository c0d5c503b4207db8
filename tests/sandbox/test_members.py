"""Program members: status upsert, forward-only moves, 1037/1025/1004, reads, missing program."""

from tests.sandbox.fixtures import start_sandbox, SandboxApi
from integrations.marketo.sandbox.seed import default_seed


def docket_program(api) -> int:
    folder = api.get("/rest/asset/v1/folder/byName.json", {"name": "Default"}).json()["result"][0]["id"]
    created = api.post_form("/rest/asset/v1/programs.json", {
        "name": "Docket Engagement", "type": "Default", "channel": "Docket", "folder": f'{{"id":{folder},"type":"Folder"}}',
    }).json()
    return created["result"][0]["id"]


def set_status(api, program_id: int, status: str, lead_ids: list[int]) -> list[dict]:
    body = {"statusName": status, "input": [{"leadId": lead_id} for lead_id in lead_ids]}
    return api.post_json(f"/rest/v1/programs/{program_id}/members/status.json", body).json()["result"]


def test_status_create_advance_and_skip(sandbox, api):
    program_id = docket_program(api)

    created = set_status(api, program_id, "Engaged", [1001, 999999])
    advanced = set_status(api, program_id, "Meeting Booked", [1001, 1002])
    repeated = set_status(api, program_id, "Meeting Booked", [1001])
    backwards = set_status(api, program_id, "Engaged", [1001])

    assert created[0] == {"seq": 0, "status": "created", "leadId": 1001}
    assert created[1]["seq"] == 1
    assert created[1]["reasons"][0]["code"] == "1004"
    assert advanced[0] == {"seq": 0, "status": "updated", "leadId": 1001}
    assert advanced[1]["status"] == "created"
    assert repeated[0]["reasons"][0] == {"code": "1037", "message": "Lead skipped because it is already in or past this status"}
    assert "leadId" not in repeated[0]
    assert backwards[0]["reasons"][0]["code"] == "1037"
    membership = sandbox.state.member(program_id, 1001)
    assert membership["statusName"] == "Meeting Booked"
    assert membership["reachedSuccess"] is True


def test_unknown_status_gives_1025_on_every_record(sandbox, api):
    program_id = docket_program(api)
    result = set_status(api, program_id, "Attended", [1001, 1002])

    assert [item["reasons"][0]["code"] for item in result] == ["1025", "1025"]


def test_batch_of_301_members_gives_1003(sandbox, api):
    program_id = docket_program(api)
    body = {"statusName": "Engaged", "input": [{"leadId": 1001}] * 301}
    response = api.post_json(f"/rest/v1/programs/{program_id}/members/status.json", body).json()

    assert response["errors"][0]["code"] == "1003"


def test_get_members_by_lead_id(sandbox, api):
    program_id = docket_program(api)
    set_status(api, program_id, "Engaged", [1001])
    response = api.get(f"/rest/v1/programs/{program_id}/members.json", {
        "filterType": "leadId", "filterValues": "1001,1002", "fields": "leadId,statusName,reachedSuccess,membershipDate,updatedAt",
    }).json()
    describe = api.get("/rest/v1/programs/members/describe.json").json()["result"][0]

    assert len(response["result"]) == 1
    member = response["result"][0]
    assert member["seq"] == 0
    assert member["leadId"] == 1001
    assert member["statusName"] == "Engaged"
    assert member["reachedSuccess"] is False
    assert member["membershipDate"].endswith("Z")
    assert ["leadId"] in describe["searchableFields"]


def test_missing_program_variants(sandbox, api):
    program_id = docket_program(api)
    api.control("delete_program", {"id": program_id})

    request_level = api.post_json(f"/rest/v1/programs/{program_id}/members/status.json", {"statusName": "Engaged", "input": [{"leadId": 1001}]}).json()
    assert request_level["errors"][0]["code"] == "1013"

    api.control("variants", {"missing_program": "request_610"})
    assert api.get(f"/rest/v1/programs/{program_id}/members.json", {"filterType": "leadId", "filterValues": "1001"}).json()["errors"][0]["code"] == "610"

    api.control("variants", {"missing_program": "record_1013"})
    per_record = set_status(api, program_id, "Engaged", [1001, 1002])
    assert [item["reasons"][0]["code"] for item in per_record] == ["1013", "1013"]


def test_engagement_program_membership_and_lead_view():
    seed = default_seed()
    server = start_sandbox(seed)
    try:
        api = SandboxApi(server)
        nurture = api.get("/rest/asset/v1/program/byName.json", {"name": "Enterprise Nurture"}).json()["result"][0]
        result = set_status(api, nurture["id"], "Engaged", [1002])
        memberships = api.get("/rest/v1/leads/1002/programMembership.json").json()["result"]

        assert result[0]["status"] == "created"
        assert memberships[0]["name"] == "Enterprise Nurture"
        assert memberships[0]["membership"]["progressionStatus"] == "Engaged"
    finally:
        server.stop()


def test_same_step_status_variant():
    seed = default_seed()
    server = start_sandbox(seed)
    try:
        api = SandboxApi(server)
        webinar = api.get("/rest/asset/v1/program/byName.json", {"name": "Q3 Product Webinar"}).json()["result"][0]["id"]
        set_status(api, webinar, "Registered", [1001])
        skipped = set_status(api, webinar, "Waitlisted", [1001])
        api.control("variants", {"same_step_status": "update"})
        moved = set_status(api, webinar, "Waitlisted", [1001])

        assert skipped[0]["reasons"][0]["code"] == "1037"
        assert moved[0]["status"] == "updated"
    finally:
        server.stop()
