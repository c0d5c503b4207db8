"""Add Custom Activities and reading activities back by paging token."""

from tests.sandbox.test_activity_types import TYPE, create_payload


def approved_type(api, attributes=None) -> int:
    api.post_json(f"{TYPE}.json", create_payload())
    api.post_json(f"{TYPE}/docketConversation/attributes/create.json", {"attributes": attributes or [
        {"apiName": "agentName", "name": "Agent Name", "dataType": "string"},
        {"apiName": "conversationDuration", "name": "Conversation Duration", "dataType": "integer"},
        {"apiName": "fullTranscript", "name": "Full Transcript", "dataType": "text"},
    ]})
    api.post(f"{TYPE}/docketConversation/approve.json")
    return next(t["id"] for t in api.get("/rest/v1/activities/external/types.json").json()["result"] if t["apiName"] == "docketConversation")


def activity(type_id: int, lead_id: int = 1001, **overrides) -> dict:
    return {
        "leadId": lead_id,
        "activityDate": "2026-05-04T15:22:10+00:00",
        "activityTypeId": type_id,
        "primaryAttributeValue": "conv_1",
        "attributes": [{"apiName": "agentName", "value": "Sales Agent"}, {"apiName": "conversationDuration", "value": 312}],
        **overrides,
    }


def test_add_activities_per_record_results(sandbox, api):
    type_id = approved_type(api)
    result = api.post_json("/rest/v1/activities/external.json", {"input": [
        activity(type_id),
        activity(type_id, lead_id=999999),
        activity(type_id, attributes=[{"apiName": "fullTranscript", "value": "x" * 70000}]),
        activity(type_id, attributes=[{"apiName": "notAnAttribute", "value": "x"}]),
        activity(type_id, attributes=[{"name": "Agent Name", "value": "by display name"}]),
        activity(type_id, attributes=[{"apiName": "conversationDuration", "value": "long"}]),
        activity(424242),
    ]}).json()["result"]

    added, no_lead, too_big, unknown, by_name, wrong_type, no_type = result
    assert added["status"] == "added"
    assert isinstance(added["marketoGUID"], str)
    assert isinstance(added["id"], int)
    assert no_lead["errors"][0]["code"] == "1004"
    assert too_big["errors"][0]["code"] == "1049"
    assert unknown["errors"][0]["code"] == "1006"
    assert by_name["status"] == "added"
    assert wrong_type["errors"][0]["code"] == "1001"
    assert no_type["status"] == "skipped"
    assert no_type["errors"][0]["code"].startswith("1")
    assert len(sandbox.state.activities_for(1001, "docketConversation")) == 2


def test_unapproved_type_and_draft_attribute_rejected(sandbox, api):
    api.post_json(f"{TYPE}.json", create_payload())
    draft_id = api.get("/rest/v1/activities/external/types.json").json()["result"][0]["id"]
    unapproved = api.post_json("/rest/v1/activities/external.json", {"input": [activity(draft_id, attributes=[])]}).json()
    assert unapproved["result"][0]["status"] == "skipped"

    api.post(f"{TYPE}/docketConversation/approve.json")
    api.post_json(f"{TYPE}/docketConversation/attributes/create.json", {"attributes": [{"apiName": "pageUrl", "name": "Page URL", "dataType": "link"}]})
    draft_only = api.post_json("/rest/v1/activities/external.json", {"input": [activity(draft_id, attributes=[{"apiName": "pageUrl", "value": "https://x.example"}])]}).json()
    assert draft_only["result"][0]["errors"][0]["code"] == "1006"

    api.post(f"{TYPE}/docketConversation/approve.json")
    live = api.post_json("/rest/v1/activities/external.json", {"input": [activity(draft_id, attributes=[{"apiName": "pageUrl", "value": "https://x.example"}])]}).json()
    assert live["result"][0]["status"] == "added"


def test_batch_of_301_activities_gives_1003(sandbox, api):
    type_id = approved_type(api)
    response = api.post_json("/rest/v1/activities/external.json", {"input": [activity(type_id)] * 301}).json()

    assert response["errors"][0]["code"] == "1003"
    assert sandbox.state.activities_for() == []


def test_read_back_by_paging_token(sandbox, api):
    type_id = approved_type(api)
    items = [activity(type_id, activityDate=f"2026-05-0{day}T10:00:00Z", primaryAttributeValue=f"conv_{day}") for day in (1, 2, 3)]
    api.post_json("/rest/v1/activities/external.json", {"input": items})

    token = api.get("/rest/v1/activities/pagingtoken.json", {"sinceDatetime": "2026-05-02T00:00:00Z"}).json()
    first = api.get("/rest/v1/activities.json", {"activityTypeIds": type_id, "nextPageToken": token["nextPageToken"], "batchSize": 1, "leadIds": 1001}).json()
    second = api.get("/rest/v1/activities.json", {"activityTypeIds": type_id, "nextPageToken": first["nextPageToken"], "batchSize": 1}).json()
    third = api.get("/rest/v1/activities.json", {"activityTypeIds": type_id, "nextPageToken": second["nextPageToken"]}).json()

    assert "result" not in token
    assert first["moreResult"] is True
    assert first["result"][0]["primaryAttributeValue"] == "conv_2"
    assert first["result"][0]["activityDate"] == "2026-05-02T10:00:00Z"
    assert first["result"][0]["attributes"] == [{"name": "Agent Name", "value": "Sales Agent"}, {"name": "Conversation Duration", "value": 312}]
    assert second["result"][0]["primaryAttributeValue"] == "conv_3"
    assert second["moreResult"] is False
    assert third["result"] == []


def test_activity_read_limits(sandbox, api):
    token = api.get("/rest/v1/activities/pagingtoken.json", {"sinceDatetime": "2026-01-01T00:00:00Z"}).json()["nextPageToken"]
    eleven_types = api.get("/rest/v1/activities.json", {"activityTypeIds": ",".join(str(n) for n in range(11)), "nextPageToken": token}).json()
    thirty_one_leads = api.get("/rest/v1/activities.json", {"activityTypeIds": "1", "leadIds": ",".join(str(n) for n in range(31)), "nextPageToken": token}).json()
    bad_date = api.get("/rest/v1/activities/pagingtoken.json", {"sinceDatetime": "yesterday"}).json()

    assert eleven_types["errors"][0]["code"] == "1003"
    assert thirty_one_leads["errors"][0]["code"] == "1003"
    assert bad_date["success"] is False


def test_activity_types_list_includes_custom(sandbox, api):
    type_id = approved_type(api)
    listed = api.get("/rest/v1/activities/types.json").json()["result"]
    custom = next(item for item in listed if item["id"] == type_id)

    assert any(item["name"] == "Visit Webpage" for item in listed)
    assert custom["primaryAttribute"]["name"] == "Conversation ID"
    assert {item["name"] for item in custom["attributes"]} == {"Agent Name", "Conversation Duration", "Full Transcript"}
