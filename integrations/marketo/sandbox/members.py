"""Program member endpoints: describe, read members, Sync Program Member Status.

Membership only moves forward. A status with a higher step than the current
one moves the lead, and the same or a lower step skips it with 1037.
"""

from .errors import ApiError, reason
from .timeutil import format_lead_datetime, parse_datetime

MAX_BATCH = 300
DEFAULT_FIELDS = ("acquiredBy", "leadId", "membershipDate", "programId", "reachedSuccess")
MEMBER_FIELDS = {
    "acquiredBy": "boolean",
    "createdAt": "datetime",
    "leadId": "integer",
    "membershipDate": "datetime",
    "programId": "integer",
    "reachedSuccess": "boolean",
    "reachedSuccessDate": "datetime",
    "statusName": "string",
    "updatedAt": "datetime",
}
SEARCHABLE = ("leadId", "reachedSuccess", "statusName", "updatedAt")
MAX_UPDATED_AT_WINDOW = 7 * 24 * 3600


def describe(state, request) -> dict:
    return {"result": [{
        "name": "API Program Member",
        "description": "API Program Member Map",
        "createdAt": format_lead_datetime(0),
        "updatedAt": format_lead_datetime(0),
        "dedupeFields": ["leadId", "programId"],
        "searchableFields": [[name] for name in SEARCHABLE],
        "fields": [
            {"name": name, "displayName": name, "dataType": data_type, "updateable": False, "crmManaged": False}
            for name, data_type in MEMBER_FIELDS.items()
        ],
    }]}


def _program(state, request) -> dict | None:
    """Return the path's program; for a missing one raise the request-level variant or return None."""
    program_id = int(request.path_params["program_id"])
    program = state.programs.get(program_id)
    if program is not None:
        return program
    variant = state.variants["missing_program"]
    if variant == "record_1013":
        return None
    code = variant.split("_")[1]
    message = "Requested resource not found" if code == "610" else f"Program '{program_id}' not found"
    raise ApiError(code, message)


def member_output(program_id: int, lead_id: int, membership: dict, fields, seq: int) -> dict:
    values = {
        "acquiredBy": membership["acquiredBy"],
        "createdAt": format_lead_datetime(membership["membershipDate"]),
        "leadId": lead_id,
        "membershipDate": format_lead_datetime(membership["membershipDate"]),
        "programId": program_id,
        "reachedSuccess": membership["reachedSuccess"],
        "reachedSuccessDate": format_lead_datetime(membership["reachedSuccessDate"]) if membership.get("reachedSuccessDate") else None,
        "statusName": membership["statusName"],
        "updatedAt": format_lead_datetime(membership["updatedAt"]),
    }
    output = {"seq": seq}
    for name in fields:
        if values.get(name) is not None:
            output[name] = values[name]
    return output


def get_members(state, request) -> dict:
    program = _program(state, request)
    filter_type = request.param("filterType")
    values = request.list_param("filterValues")
    if not filter_type:
        raise ApiError("701", "filterType cannot be blank")
    if filter_type not in SEARCHABLE:
        raise ApiError("1003", f"Invalid filterType '{filter_type}'; use one of {', '.join(SEARCHABLE)}")
    if filter_type != "updatedAt" and not values:
        raise ApiError("701", "filterValues cannot be blank")
    if len(values) > MAX_BATCH:
        raise ApiError("1003", f"filterValues has {len(values)} values; the maximum is {MAX_BATCH}")
    fields = request.list_param("fields") or list(DEFAULT_FIELDS)
    unknown = [name for name in fields if name not in MEMBER_FIELDS]
    if unknown:
        raise ApiError("1006", f"Field '{unknown[0]}' not found")
    if program is None:
        return {"result": []}

    start = end = None
    if filter_type == "updatedAt":
        start, end = parse_datetime(request.param("startAt")), parse_datetime(request.param("endAt"))
        if start is None or end is None:
            raise ApiError("1003", "filterType updatedAt needs startAt and endAt as ISO 8601 datetimes")
        if end - start > MAX_UPDATED_AT_WINDOW:
            raise ApiError("1003", "The updatedAt window between startAt and endAt must be 7 days or less")

    def matches(lead_id: int, membership: dict) -> bool:
        if filter_type == "leadId":
            return str(lead_id) in values
        if filter_type == "statusName":
            return membership["statusName"] in values
        if filter_type == "reachedSuccess":
            return str(membership["reachedSuccess"]).lower() in [value.lower() for value in values]
        return start <= membership["updatedAt"] <= end

    members = state.members.get(program["id"], {})
    selected = [(lead_id, membership) for lead_id, membership in members.items() if matches(lead_id, membership)]
    return {"result": [
        member_output(program["id"], lead_id, membership, fields, seq)
        for seq, (lead_id, membership) in enumerate(selected)
    ]}


def _channel_status(state, program: dict, status_name: str) -> dict | None:
    channel = next((c for c in state.channels.values() if c["name"] == program["channel"]), None)
    if channel is None:
        return None
    return next((status for status in channel["progressionStatuses"] if status["name"] == status_name), None)


def _skipped(seq: int, code: str, message: str) -> dict:
    # The docs' skipped example carries no leadId, so clients must match by seq.
    return {"seq": seq, "status": "skipped", "reasons": [reason(code, message)]}


def sync_status(state, request) -> dict:
    """Sync Program Member Status: add non-members, move members forward, skip the rest."""
    body = request.json_body()
    program = _program(state, request)
    if not isinstance(body, dict):
        raise ApiError("609", "Invalid JSON: the body must be an object with 'statusName' and 'input'")
    status_name = body.get("statusName")
    items = body.get("input")
    if not status_name:
        raise ApiError("701", "statusName cannot be blank")
    if not isinstance(items, list):
        raise ApiError("701", "input cannot be blank; send a list of {leadId}")
    if len(items) > MAX_BATCH:
        raise ApiError("1003", f"Batch of {len(items)} records exceeds the maximum of {MAX_BATCH}")

    if program is None:
        return {"result": [_skipped(seq, "1013", "Program not found") for seq in range(len(items))]}
    status = _channel_status(state, program, status_name)
    now = state.now()
    members = state.members.setdefault(program["id"], {})
    results = []
    for seq, item in enumerate(items):
        lead_id = item.get("leadId") if isinstance(item, dict) else None
        if status is None:
            results.append(_skipped(seq, "1025", f"Program status '{status_name}' is not valid for channel '{program['channel']}'"))
            continue
        if isinstance(lead_id, bool) or not isinstance(lead_id, int):
            results.append(_skipped(seq, "1003", f"Invalid leadId {lead_id!r}"))
            continue
        if lead_id not in state.leads:
            results.append(_skipped(seq, "1004", "Lead not found"))
            continue

        membership = members.get(lead_id)
        if membership is None:
            members[lead_id] = {
                "statusName": status["name"], "step": status["step"], "reachedSuccess": status["success"],
                "reachedSuccessDate": now if status["success"] else None,
                "acquiredBy": False, "membershipDate": now, "updatedAt": now,
            }
            results.append({"seq": seq, "status": "created", "leadId": lead_id})
            continue

        same_step_moves = state.variants["same_step_status"] == "update" and membership["statusName"] != status["name"]
        if status["step"] > membership["step"] or (status["step"] == membership["step"] and same_step_moves):
            membership.update({"statusName": status["name"], "step": status["step"], "updatedAt": now})
            if status["success"] and not membership["reachedSuccess"]:
                membership["reachedSuccess"] = True
                membership["reachedSuccessDate"] = now
            results.append({"seq": seq, "status": "updated", "leadId": lead_id})
        else:
            results.append(_skipped(seq, "1037", "Lead skipped because it is already in or past this status"))
    # NOTE: Marketo also logs a "Change Program Status" activity on the lead;
    # the sandbox does not, because its standard activity type ids are seed data.
    return {"result": results}


def lead_program_membership(state, request) -> dict:
    """GET /rest/v1/leads/{leadId}/programMembership.json (needs an Assets permission)."""
    from .assets import program_view

    lead_id = int(request.path_params["lead_id"])
    program_ids = request.list_param("filterValues") if request.param("filterType") == "programId" else None
    result = []
    for program_id, members in state.members.items():
        membership = members.get(lead_id)
        program = state.programs.get(program_id)
        if membership is None or program is None or (program_ids and str(program_id) not in program_ids):
            continue
        view = program_view(state, program, include_tags=False, include_costs=False)
        view["membership"] = {
            "progressionStatus": membership["statusName"],
            "acquiredBy": membership["acquiredBy"],
            "reachedSuccess": membership["reachedSuccess"],
            "membershipDate": format_lead_datetime(membership["membershipDate"]),
            "updatedAt": format_lead_datetime(membership["updatedAt"]),
            "isExhausted": False,
        }
        result.append(view)
    return {"result": result}
