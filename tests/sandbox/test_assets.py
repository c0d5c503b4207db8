"""Asset API: channels, folders, programs, tag types."""

from integrations.marketo.sandbox.seed import default_seed
from tests.sandbox.fixtures import SandboxApi, start_sandbox

NOT_FOUND = "No assets found for the given search criteria."


def default_folder(api) -> int:
    return api.get("/rest/asset/v1/folder/byName.json", {"name": "Default"}).json()["result"][0]["id"]


def test_channels_browse_and_by_name(sandbox, api):
    page = api.get("/rest/asset/v1/channels.json", {"maxReturn": 2, "offset": 1}).json()
    by_name = api.get("/rest/asset/v1/channel/byName.json", {"name": "Docket"}).json()
    spec_case = api.get("/rest/asset/v1/channel/byName.json", {"Name": "Docket"}).json()
    missing = api.get("/rest/asset/v1/channel/byName.json", {"name": "Nope"}).json()
    too_many = api.get("/rest/asset/v1/channels.json", {"maxReturn": 201}).json()

    assert [channel["name"] for channel in page["result"]] == ["Nurture", "Webinar"]
    docket = by_name["result"][0]
    assert docket["applicableProgramType"] == "program"
    assert [(s["name"], s["step"], s["success"]) for s in docket["progressionStatuses"]] == [
        ("Not in Program", 0, False), ("Engaged", 10, False), ("Meeting Booked", 20, True),
    ]
    assert spec_case["result"][0]["id"] == docket["id"]
    assert missing["success"] is True
    assert missing["warnings"] == [NOT_FOUND]
    assert "result" not in missing
    assert too_many["success"] is False


def test_folder_create_lookup_and_duplicate(sandbox, api):
    parent = default_folder(api)
    created = api.post_form("/rest/asset/v1/folders.json", {
        "name": "Docket", "parent": f'{{"id":{parent},"type":"Folder"}}', "description": "Created by Docket.",
    }).json()
    duplicate = api.post_form("/rest/asset/v1/folders.json", {"name": "Docket", "parent": f'{{"id":{parent},"type":"Folder"}}'}).json()
    no_parent = api.post_form("/rest/asset/v1/folders.json", {"name": "X", "parent": '{"id":999,"type":"Folder"}'}).json()
    json_body = api.post_json("/rest/asset/v1/folders.json", {"name": "X"}).json()
    under_root = api.get("/rest/asset/v1/folder/byName.json", {"name": "Docket", "root": f'{{"id":{parent},"type":"Folder"}}'}).json()
    elsewhere = api.get("/rest/asset/v1/folder/byName.json", {"name": "Docket", "root": '{"id":11,"type":"Folder"}'}).json()

    folder = created["result"][0]
    assert folder["path"] == "/Marketing Activities/Default/Docket"
    assert folder["parent"] == {"id": parent, "type": "Folder"}
    assert folder["createdAt"].endswith("Z+0000")
    assert duplicate["errors"][0]["code"] == "709"
    assert no_parent["errors"][0]["code"] == "710"
    assert json_body["errors"][0]["code"] == "612"
    assert under_root["result"][0]["id"] == folder["id"]
    assert elsewhere["warnings"] == [NOT_FOUND]
    by_id = api.get(f"/rest/asset/v1/folder/{folder['id']}.json", {"type": "Folder"}).json()
    assert by_id["result"][0]["description"] == "Created by Docket."


def test_duplicate_folder_variant_611(sandbox, api):
    api.control("variants", {"duplicate_folder": "611"})
    parent = default_folder(api)
    api.post_form("/rest/asset/v1/folders.json", {"name": "Docket", "parent": f'{{"id":{parent},"type":"Folder"}}'})
    duplicate = api.post_form("/rest/asset/v1/folders.json", {"name": "Docket", "parent": f'{{"id":{parent},"type":"Folder"}}'}).json()

    assert duplicate["errors"][0]["code"] == "611"


def test_folders_browse(sandbox, api):
    roots = api.get("/rest/asset/v1/folders.json", {"root": '{"id":10,"type":"Folder"}', "maxDepth": 1}).json()

    assert {folder["name"] for folder in roots["result"]} == {"Marketing Activities", "Default"}


def test_program_create_and_lookups(sandbox, api):
    folder = default_folder(api)
    created = api.post_form("/rest/asset/v1/programs.json", {
        "name": "Docket Engagement", "type": "default", "channel": "Docket",
        "folder": f'{{"id":{folder},"type":"Folder"}}', "description": "Tracks Docket chats.",
    }).json()["result"][0]
    by_name = api.get("/rest/asset/v1/program/byName.json", {"name": "Docket Engagement"}).json()["result"][0]
    by_id = api.get(f"/rest/asset/v1/program/{created['id']}.json").json()["result"][0]
    missing = api.get("/rest/asset/v1/program/424242.json").json()
    browse = api.get("/rest/asset/v1/programs.json", {"maxReturn": 200}).json()["result"]

    assert created["type"] == "Default"
    assert created["channel"] == "Docket"
    assert created["folder"] == {"type": "Folder", "value": folder, "folderName": "Default"}
    assert by_name["id"] == created["id"]
    assert by_id["name"] == "Docket Engagement"
    assert missing["warnings"] == [NOT_FOUND]
    assert "Docket Engagement" in {program["name"] for program in browse}

    api.control("variants", {"program_type_format": "code"})
    assert api.get(f"/rest/asset/v1/program/{created['id']}.json").json()["result"][0]["type"] == "program"


def test_program_type_must_match_channel(sandbox, api):
    folder = default_folder(api)
    engagement_on_default = api.post_form("/rest/asset/v1/programs.json", {
        "name": "Docket Engagement", "type": "Engagement", "channel": "Docket", "folder": f'{{"id":{folder},"type":"Folder"}}',
    }).json()
    default_on_nurture = api.post_form("/rest/asset/v1/programs.json", {
        "name": "Other", "type": "Default", "channel": "Nurture", "folder": f'{{"id":{folder},"type":"Folder"}}',
    }).json()

    assert engagement_on_default["errors"][0]["code"] == "709"
    assert "Default" in engagement_on_default["errors"][0]["message"]
    assert default_on_nurture["errors"][0]["code"] == "709"


def test_duplicate_program_name_and_variant(sandbox, api):
    folder = default_folder(api)
    form = {"name": "Enterprise Nurture", "type": "Engagement", "channel": "Nurture", "folder": f'{{"id":{folder},"type":"Folder"}}'}
    duplicate = api.post_form("/rest/asset/v1/programs.json", form).json()
    api.control("variants", {"duplicate_program": "611"})
    variant = api.post_form("/rest/asset/v1/programs.json", form).json()

    assert duplicate["errors"][0] == {"code": "709", "message": "Program with the same name already exists"}
    assert variant["errors"][0]["code"] == "611"


def test_program_create_checks_inputs(sandbox, api):
    folder = default_folder(api)
    base = {"name": "P", "type": "Default", "channel": "Docket", "folder": f'{{"id":{folder},"type":"Folder"}}'}
    missing_channel = api.post_form("/rest/asset/v1/programs.json", {**base, "channel": ""}).json()
    unknown_channel = api.post_form("/rest/asset/v1/programs.json", {**base, "channel": "Nope"}).json()
    unknown_folder = api.post_form("/rest/asset/v1/programs.json", {**base, "folder": '{"id":999,"type":"Folder"}'}).json()
    bad_tag = api.post_form("/rest/asset/v1/programs.json", {**base, "tags": '[{"tagType":"Region","tagValue":"MARS"}]'}).json()

    assert missing_channel["errors"][0]["code"] == "701"
    assert unknown_channel["errors"][0]["code"] == "709"
    assert unknown_folder["errors"][0]["code"] == "710"
    assert bad_tag["errors"][0]["code"] == "709"


def test_required_tag_type_names_tag():
    seed = default_seed()
    seed["tag_types"].append({"tagType": "Business Unit", "required": True, "applicableProgramTypes": ["program"], "allowableValues": ["Sales", "Marketing"]})
    server = start_sandbox(seed)
    try:
        api = SandboxApi(server)
        folder = default_folder(api)
        form = {"name": "Docket Engagement", "type": "Default", "channel": "Docket", "folder": f'{{"id":{folder},"type":"Folder"}}'}
        rejected = api.post_form("/rest/asset/v1/programs.json", form).json()
        accepted = api.post_form("/rest/asset/v1/programs.json", {**form, "tags": '[{"tagType":"Business Unit","tagValue":"Sales"}]'}).json()
        tag_types = api.get("/rest/asset/v1/tagTypes.json").json()["result"]
        by_name = api.get("/rest/asset/v1/tagType/byName.json", {"name": "Business Unit"}).json()["result"][0]

        assert rejected["errors"][0]["code"] == "709"
        assert "Business Unit" in rejected["errors"][0]["message"]
        assert accepted["success"] is True
        assert {"tagType": "Business Unit", "applicableProgramTypes": "program", "required": True} in tag_types
        assert by_name["allowableValues"] == "Sales,Marketing"
    finally:
        server.stop()
