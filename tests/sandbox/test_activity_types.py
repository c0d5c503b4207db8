"""Custom activity type lifecycle: draft, approve, edits, limits, duplicates."""

TYPE = "/rest/v1/activities/external/type"


def create_payload(api_name: str = "docketConversation", suffix: str = "") -> dict:
    return {
        "apiName": api_name,
        "name": f"Docket Conversation{suffix}",
        "triggerName": f"Has Docket Conversation{suffix}",
        "filterName": f"Had Docket Conversation{suffix}",
        "primaryAttribute": {"apiName": "conversationId", "name": "Conversation ID", "dataType": "string"},
    }


def attribute(index: int) -> dict:
    return {"apiName": f"attr{index}", "name": f"Attribute {index}", "dataType": "string"}


def test_create_draft_then_approve(sandbox, api):
    created = api.post_json(f"{TYPE}.json", create_payload()).json()
    listed = api.get("/rest/v1/activities/external/types.json").json()["result"]
    describe_live = api.get(f"{TYPE}/docketConversation/describe.json").json()
    describe_draft = api.get(f"{TYPE}/docketConversation/describe.json", {"draft": "true"}).json()
    approved = api.post(f"{TYPE}/docketConversation/approve.json").json()

    assert created["result"][0]["status"] == "draft"
    assert "id" not in created["result"][0]
    assert listed[0]["apiName"] == "docketConversation"
    assert listed[0]["id"] >= 100001
    assert describe_live["errors"][0]["code"] == "702"
    assert describe_draft["result"][0]["primaryAttribute"]["apiName"] == "conversationId"
    assert approved["result"][0]["status"] == "approved"
    assert api.post(f"{TYPE}/docketConversation/approve.json").json()["errors"][0]["code"] == "709"


def test_edit_after_approval_makes_approved_with_draft(sandbox, api):
    api.post_json(f"{TYPE}.json", create_payload())
    api.post(f"{TYPE}/docketConversation/approve.json")

    edited = api.post_json(f"{TYPE}/docketConversation/attributes/create.json", {"attributes": [attribute(1)]}).json()
    live = api.get(f"{TYPE}/docketConversation/describe.json").json()["result"][0]
    discarded = api.post(f"{TYPE}/docketConversation/discardDraft.json").json()["result"][0]

    assert edited["result"][0]["status"] == "approved with draft"
    assert live["attributes"] == []
    assert discarded["status"] == "approved"
    assert discarded["attributes"] == []


def test_update_type_and_attributes(sandbox, api):
    api.post_json(f"{TYPE}.json", create_payload())
    api.post_json(f"{TYPE}/docketConversation/attributes/create.json", {"attributes": [attribute(1), attribute(2)]})
    api.post_json(f"{TYPE}/docketConversation.json", {"description": "Chats"})
    api.post_json(f"{TYPE}/docketConversation/attributes/update.json", {"attributes": [{"apiName": "attr1", "name": "Renamed"}]})
    api.post_json(f"{TYPE}/docketConversation/attributes/delete.json", {"attributes": [{"apiName": "attr2"}]})
    missing = api.post_json(f"{TYPE}/docketConversation/attributes/update.json", {"attributes": [{"apiName": "nope"}]}).json()
    draft = api.get(f"{TYPE}/docketConversation/describe.json", {"draft": "true"}).json()["result"][0]

    assert draft["description"] == "Chats"
    assert draft["attributes"] == [{"apiName": "attr1", "name": "Renamed", "dataType": "string"}]
    assert missing["errors"][0]["code"] == "702"


def test_21st_secondary_attribute_gives_1028(sandbox, api):
    api.post_json(f"{TYPE}.json", create_payload())
    twenty = api.post_json(f"{TYPE}/docketConversation/attributes/create.json", {"attributes": [attribute(i) for i in range(20)]}).json()
    one_more = api.post_json(f"{TYPE}/docketConversation/attributes/create.json", {"attributes": [attribute(20)]}).json()

    assert twenty["success"] is True
    assert one_more["errors"][0]["code"] == "1028"


def test_attribute_limit_variant_counts_primary(sandbox, api):
    api.control("variants", {"attribute_limit": "20_with_primary"})
    api.post_json(f"{TYPE}.json", create_payload())
    twenty = api.post_json(f"{TYPE}/docketConversation/attributes/create.json", {"attributes": [attribute(i) for i in range(20)]}).json()

    assert twenty["errors"][0]["code"] == "1028"


def test_11th_type_gives_1027(sandbox, api):
    for index in range(10):
        assert api.post_json(f"{TYPE}.json", create_payload(f"type{index}", f" {index}")).json()["success"] is True
    eleventh = api.post_json(f"{TYPE}.json", create_payload("typeEleven", " Eleven")).json()

    assert eleventh["errors"][0]["code"] == "1027"


def test_duplicate_names_rejected(sandbox, api):
    api.post_json(f"{TYPE}.json", create_payload())
    same_api_name = api.post_json(f"{TYPE}.json", create_payload(suffix=" Two")).json()
    same_trigger = api.post_json(f"{TYPE}.json", {**create_payload("otherType", " Two"), "triggerName": "Has Docket Conversation"}).json()
    api.control("variants", {"duplicate_activity_type": "1017"})
    variant = api.post_json(f"{TYPE}.json", create_payload(suffix=" Three")).json()

    assert same_api_name["errors"][0]["code"] == "709"
    assert same_trigger["errors"][0]["code"] == "709"
    assert variant["errors"][0]["code"] == "1017"


def test_discard_and_delete_draft_only_type(sandbox, api):
    api.post_json(f"{TYPE}.json", create_payload())
    discard = api.post(f"{TYPE}/docketConversation/discardDraft.json").json()
    deleted = api.post(f"{TYPE}/docketConversation/delete.json").json()

    assert discard["errors"][0]["code"] == "709"
    assert deleted["result"][0]["status"] == "deleted"
    assert api.get("/rest/v1/activities/external/types.json").json()["result"] == []


def test_create_validates_fields(sandbox, api):
    missing = api.post_json(f"{TYPE}.json", {"apiName": "x1"}).json()
    bad_api_name = api.post_json(f"{TYPE}.json", create_payload("bad-name")).json()
    bad_type = api.post_json(f"{TYPE}.json", {**create_payload(), "primaryAttribute": {"apiName": "p", "name": "P", "dataType": "blob"}}).json()

    assert missing["errors"][0]["code"] == "701"
    assert bad_api_name["errors"][0]["code"] == "1003"
    assert bad_type["errors"][0]["code"] == "1003"
