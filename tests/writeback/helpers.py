"""Reading what the sandbox holds, by names a test can assert on."""

from collections import Counter


def activity_type_ids(sandbox) -> dict[str, int]:
    return {api_name: record["id"] for api_name, record in sandbox.state.activity_types.items() if record.get("id")}


def activities_by_type(sandbox) -> Counter:
    names = {type_id: api_name for api_name, type_id in activity_type_ids(sandbox).items()}
    return Counter(names.get(activity["activityTypeId"]) for activity in sandbox.state.dump()["activities"])


def conversation_activities(sandbox, conversation_id: str) -> list[dict]:
    type_id = activity_type_ids(sandbox)["docketConversation"]
    return [
        activity
        for activity in sandbox.state.dump()["activities"]
        if activity["activityTypeId"] == type_id and activity["primaryAttributeValue"] == conversation_id
    ]


def attributes_of(activity: dict) -> dict:
    return {item.get("apiName") or item.get("name"): item.get("value") for item in activity["attributes"]}


def lead_by_email(sandbox, email: str) -> dict | None:
    for lead in sandbox.state.dump()["leads"]:
        if str(lead.get("email", "")).lower() == email:
            return lead
    return None


def member_status(sandbox, program_name: str, lead_id: int) -> str | None:
    program = sandbox.state.program_by_name(program_name)
    member = sandbox.state.member(program["id"], lead_id)
    return member["statusName"] if member else None
