"""Custom activity type lifecycle under `/rest/v1/activities/external/type...`.

A type has an approved (live) version, a draft, or both. Every edit lands in
the draft, which `approve` makes live. Activities always use the approved
version. The `status` field is derived: draft, approved, approved with draft.
"""

import copy
import re

from .errors import ApiError
from .seed import ACTIVITY_ATTRIBUTE_TYPES
from .timeutil import format_lead_datetime

MAX_CUSTOM_TYPES = 10
MAX_SECONDARY_ATTRIBUTES = 20
TYPE_FIELDS = ("name", "description", "triggerName", "filterName")
# apiName: alphanumeric with at least one letter, at most 255 characters.
API_NAME_PATTERN = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9]{1,255}$")
# Display name: letters, digits, spaces and underscores, with at least one letter.
DISPLAY_NAME_PATTERN = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 _]+$")


def status_of(record: dict) -> str:
    if record["approved"] is None:
        return "draft"
    return "approved with draft" if record["draft"] is not None else "approved"


def type_view(record: dict, version: dict, *, include_id: bool = True) -> dict:
    view = {
        "apiName": record["apiName"],
        "name": version["name"],
        "description": version.get("description", ""),
        "triggerName": version["triggerName"],
        "filterName": version["filterName"],
        "primaryAttribute": copy.deepcopy(version["primaryAttribute"]),
        "attributes": copy.deepcopy(version["attributes"]),
        "status": status_of(record),
        "createdAt": format_lead_datetime(record["createdAt"]),
        "updatedAt": format_lead_datetime(record["updatedAt"]),
    }
    if include_id:
        view = {"id": record["id"], **view}
    return view


def _record(state, request) -> dict:
    api_name = request.path_params["api_name"]
    record = state.activity_types.get(api_name)
    if record is None:
        raise ApiError("702", f"Activity type '{api_name}' not found")
    return record


def _editable_version(state, record: dict) -> dict:
    """Return the draft, creating it from the approved version on the first edit."""
    if record["draft"] is None:
        record["draft"] = copy.deepcopy(record["approved"])
    record["updatedAt"] = state.now()
    return record["draft"]


def _duplicate_error(state, field: str, value: str) -> ApiError:
    variant = state.variants["duplicate_activity_type"]
    if variant == "1017":
        return ApiError("1017", f"Object already exists: activity type with {field} '{value}'")
    if variant == "611":
        return ApiError("611", "System error")
    return ApiError("709", f"Activity type with {field} '{value}' already exists")


def _check_unique(state, version: dict, api_name: str) -> None:
    for other in state.activity_types.values():
        if other["apiName"] == api_name:
            continue
        for other_version in (other["approved"], other["draft"]):
            if other_version is None:
                continue
            for field in ("triggerName", "filterName"):
                if version.get(field) and other_version[field] == version[field]:
                    raise _duplicate_error(state, field, version[field])


def _check_attribute(attribute, *, require_all: bool = True) -> dict:
    if not isinstance(attribute, dict):
        raise ApiError("1003", f"Attribute {attribute!r} must be an object")
    api_name = attribute.get("apiName")
    if not api_name:
        raise ApiError("701", "Attribute apiName cannot be blank")
    if not API_NAME_PATTERN.match(str(api_name)):
        raise ApiError("1003", f"Invalid attribute apiName '{api_name}': use letters and digits, with at least one letter")
    if require_all:
        for key in ("name", "dataType"):
            if not attribute.get(key):
                raise ApiError("701", f"Attribute {key} cannot be blank for attribute '{api_name}'")
    if "dataType" in attribute and attribute["dataType"] not in ACTIVITY_ATTRIBUTE_TYPES:
        raise ApiError(
            "1003",
            f"Invalid dataType '{attribute['dataType']}' for attribute '{api_name}'; use one of {', '.join(sorted(ACTIVITY_ATTRIBUTE_TYPES))}",
        )
    return {key: attribute[key] for key in ("apiName", "name", "dataType", "description", "isPrimary") if key in attribute}


def _secondary_limit(state) -> int:
    return MAX_SECONDARY_ATTRIBUTES - (1 if state.variants["attribute_limit"] == "20_with_primary" else 0)


def list_types(state, request) -> dict:
    records = [record for record in state.activity_types.values()]
    return {"result": [type_view(record, record["approved"] or record["draft"]) for record in records]}


def describe_type(state, request) -> dict:
    record = _record(state, request)
    if request.param("draft") == "true":
        version = record["draft"] or record["approved"]
    elif record["approved"] is not None:
        version = record["approved"]
    elif state.variants["describe_unapproved"] == "draft":
        version = record["draft"]
    else:
        raise ApiError("702", f"Activity type '{record['apiName']}' has no approved version; use draft=true")
    return {"result": [type_view(record, version)]}


def create_type(state, request) -> dict:
    body = request.json_body()
    if not isinstance(body, dict):
        raise ApiError("609", "Invalid JSON: the body must be an object")
    for key in ("apiName", "name", "triggerName", "filterName", "primaryAttribute"):
        if not body.get(key):
            raise ApiError("701", f"{key} cannot be blank")
    api_name = body["apiName"]
    if not API_NAME_PATTERN.match(str(api_name)):
        raise ApiError("1003", f"Invalid apiName '{api_name}': use letters and digits, with at least one letter")
    if not DISPLAY_NAME_PATTERN.match(str(body["name"])):
        raise ApiError("1003", f"Invalid name '{body['name']}': use letters, digits, spaces and underscores")
    primary = dict(body["primaryAttribute"]) if isinstance(body["primaryAttribute"], dict) else body["primaryAttribute"]
    # NOTE: Marketo does not document the primary attribute's default dataType;
    # the docs' example omits it and the response shows "string".
    if isinstance(primary, dict):
        primary.setdefault("dataType", "string")
    primary = _check_attribute(primary)
    primary.pop("isPrimary", None)

    if api_name in state.activity_types:
        raise _duplicate_error(state, "apiName", api_name)
    version = {"name": body["name"], "description": body.get("description", ""),
               "triggerName": body["triggerName"], "filterName": body["filterName"],
               "primaryAttribute": primary, "attributes": []}
    _check_unique(state, version, api_name)
    if len(state.activity_types) >= MAX_CUSTOM_TYPES:
        raise ApiError("1027", f"Max activity type limit reached: {MAX_CUSTOM_TYPES} custom activity types exist")

    now = state.now()
    record = {"id": state.take_id("activity_type"), "apiName": api_name, "approved": None,
              "draft": version, "createdAt": now, "updatedAt": now}
    state.activity_types[api_name] = record
    include_id = state.variants["type_create_response"] == "with_id"
    return {"result": [type_view(record, version, include_id=include_id)]}


def update_type(state, request) -> dict:
    record = _record(state, request)
    body = request.json_body()
    if not isinstance(body, dict):
        raise ApiError("609", "Invalid JSON: the body must be an object")
    if "apiName" in body and body["apiName"] != record["apiName"]:
        raise ApiError("709", "apiName cannot be changed")
    if "name" in body and not DISPLAY_NAME_PATTERN.match(str(body["name"])):
        raise ApiError("1003", f"Invalid name '{body['name']}': use letters, digits, spaces and underscores")
    changes = {key: body[key] for key in TYPE_FIELDS if key in body}
    _check_unique(state, changes, record["apiName"])

    version = _editable_version(state, record)
    version.update(changes)
    if "primaryAttribute" in body:
        primary = _check_attribute({**version["primaryAttribute"], **body["primaryAttribute"]})
        primary.pop("isPrimary", None)
        version["primaryAttribute"] = primary
    return {"result": [type_view(record, version)]}


def approve_type(state, request) -> dict:
    record = _record(state, request)
    if record["draft"] is None:
        # Marketo returns 709 when approving an asset without a draft; the docs
        # do not say whether custom activity types do the same.
        raise ApiError("709", f"Activity type '{record['apiName']}' has no draft to approve")
    record["approved"] = record["draft"]
    record["draft"] = None
    record["updatedAt"] = state.now()
    return {"result": [type_view(record, record["approved"])]}


def discard_draft(state, request) -> dict:
    record = _record(state, request)
    if record["approved"] is None:
        # Read from "types are managed like assets": an asset with no approved
        # version cannot discard its draft. Delete the type instead.
        raise ApiError("709", f"Activity type '{record['apiName']}' has never been approved; delete it instead")
    if record["draft"] is None:
        raise ApiError("709", f"Activity type '{record['apiName']}' has no draft to discard")
    record["draft"] = None
    record["updatedAt"] = state.now()
    return {"result": [type_view(record, record["approved"])]}


def delete_type(state, request) -> dict:
    record = _record(state, request)
    del state.activity_types[record["apiName"]]
    view = type_view(record, record["approved"] or record["draft"])
    view["status"] = "deleted"
    return {"result": [view]}


def _body_attributes(request) -> list:
    body = request.json_body()
    attributes = body.get("attributes") if isinstance(body, dict) else None
    if not isinstance(attributes, list) or not attributes:
        raise ApiError("701", "attributes cannot be blank; send a list of attributes")
    return attributes


def create_attributes(state, request) -> dict:
    record = _record(state, request)
    attributes = [_check_attribute(attribute) for attribute in _body_attributes(request)]
    version = copy.deepcopy(record["draft"] or record["approved"])

    for attribute in attributes:
        existing = {item["apiName"] for item in version["attributes"]} | {version["primaryAttribute"]["apiName"]}
        if attribute["apiName"] in existing:
            raise ApiError("709", f"Attribute '{attribute['apiName']}' already exists on type '{record['apiName']}'")
        if attribute.pop("isPrimary", False):
            raise ApiError("709", "The type already has a primary attribute; set isPrimary false on it first")
        version["attributes"].append(attribute)
    if len(version["attributes"]) > _secondary_limit(state):
        raise ApiError("1028", f"Max field limit reached: a type has at most {_secondary_limit(state)} secondary attributes")

    _editable_version(state, record)
    record["draft"] = version
    return {"result": [type_view(record, version)]}


def update_attributes(state, request) -> dict:
    record = _record(state, request)
    changes = [_check_attribute(attribute, require_all=False) for attribute in _body_attributes(request)]
    version = copy.deepcopy(record["draft"] or record["approved"])
    by_name = {item["apiName"]: item for item in version["attributes"]}

    for change in changes:
        api_name = change["apiName"]
        is_primary = change.pop("isPrimary", None)
        if api_name == version["primaryAttribute"]["apiName"]:
            if is_primary is False:
                # Demoting the primary makes it a secondary attribute again.
                version["attributes"].append({**version["primaryAttribute"], **change})
                version["primaryAttribute"] = None
            else:
                version["primaryAttribute"].update(change)
            continue
        if api_name not in by_name:
            raise ApiError("702", f"Attribute '{api_name}' not found on type '{record['apiName']}'")
        by_name[api_name].update(change)
        if is_primary:
            if version["primaryAttribute"] is not None:
                raise ApiError("709", "The type already has a primary attribute; set isPrimary false on it first")
            version["attributes"].remove(by_name[api_name])
            version["primaryAttribute"] = by_name[api_name]
    if version["primaryAttribute"] is None:
        raise ApiError("709", "A custom activity type needs a primary attribute; mark another attribute isPrimary")
    if len(version["attributes"]) > _secondary_limit(state):
        raise ApiError("1028", f"Max field limit reached: a type has at most {_secondary_limit(state)} secondary attributes")

    _editable_version(state, record)
    record["draft"] = version
    return {"result": [type_view(record, version)]}


def delete_attributes(state, request) -> dict:
    record = _record(state, request)
    names = []
    for attribute in _body_attributes(request):
        if not isinstance(attribute, dict) or not attribute.get("apiName"):
            raise ApiError("701", "Attribute apiName cannot be blank")
        names.append(attribute["apiName"])
    version = copy.deepcopy(record["draft"] or record["approved"])

    for api_name in names:
        if api_name == version["primaryAttribute"]["apiName"]:
            raise ApiError("709", f"Attribute '{api_name}' is the primary attribute and cannot be deleted")
        if api_name not in {item["apiName"] for item in version["attributes"]}:
            raise ApiError("702", f"Attribute '{api_name}' not found on type '{record['apiName']}'")
        version["attributes"] = [item for item in version["attributes"] if item["apiName"] != api_name]

    _editable_version(state, record)
    record["draft"] = version
    return {"result": [type_view(record, version)]}
