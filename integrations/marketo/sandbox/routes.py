"""The REST route table: path pattern, method, required permission, body kind, handler."""

import re
from dataclasses import dataclass

from . import activities, activity_types, assets, leads, members

# (resource, level) pairs checked against the API client's role; see auth.check_permission.
ASSETS_READ = ("Assets", "read")
ASSETS_WRITE = ("Assets", "write")
LEAD_READ = ("Lead", "read")
LEAD_WRITE = ("Lead", "write")
ACTIVITY_READ = ("Activity", "read")
ACTIVITY_WRITE = ("Activity", "write")
METADATA_READ = ("Activity Metadata", "read")
METADATA_WRITE = ("Activity Metadata", "write")


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern
    handler: object
    permission: tuple[str, str] | None
    # "json": the handler reads a JSON body; "form": the server parses a
    # form body first; "none": any body is ignored.
    body: str = "none"


def _usage(days: int):
    return lambda state, request: {"result": state.limiter.usage(days)}


def _errors(days: int):
    return lambda state, request: {"result": state.limiter.error_usage(days)}


_TYPE = r"/rest/v1/activities/external/type/(?P<api_name>[^/]+)"

_TABLE = [
    # Usage: no permission needed.
    ("GET", r"/rest/v1/stats/usage\.json", _usage(1), None, "none"),
    ("GET", r"/rest/v1/stats/usage/last7days\.json", _usage(7), None, "none"),
    ("GET", r"/rest/v1/stats/errors\.json", _errors(1), None, "none"),
    ("GET", r"/rest/v1/stats/errors/last7days\.json", _errors(7), None, "none"),
    # Leads.
    ("GET", r"/rest/v1/leads/describe\.json", leads.describe, LEAD_READ, "none"),
    ("GET", r"/rest/v1/leads/describe2\.json", leads.describe2, LEAD_READ, "none"),
    ("GET", r"/rest/v1/leads\.json", leads.get_leads, LEAD_READ, "none"),
    ("POST", r"/rest/v1/leads\.json", leads.sync_leads, LEAD_WRITE, "json"),
    ("GET", r"/rest/v1/lead/(?P<lead_id>\d+)\.json", leads.get_lead, LEAD_READ, "none"),
    ("POST", r"/rest/v1/leads/(?P<lead_id>\d+)/associate\.json", leads.associate, LEAD_WRITE, "none"),
    ("POST", r"/rest/v1/leads/(?P<lead_id>\d+)/merge\.json", leads.merge, LEAD_WRITE, "none"),
    # Reading a lead's program membership needs an Assets permission, not a Lead one.
    ("GET", r"/rest/v1/leads/(?P<lead_id>\d+)/programMembership\.json", members.lead_program_membership, ASSETS_READ, "none"),
    # Activities.
    ("GET", r"/rest/v1/activities/types\.json", activities.list_activity_types, ACTIVITY_READ, "none"),
    ("POST", r"/rest/v1/activities/external\.json", activities.add_activities, ACTIVITY_WRITE, "json"),
    ("GET", r"/rest/v1/activities/pagingtoken\.json", activities.paging_token, ACTIVITY_READ, "none"),
    ("GET", r"/rest/v1/activities\.json", activities.get_activities, ACTIVITY_READ, "none"),
    # Custom activity types.
    ("GET", r"/rest/v1/activities/external/types\.json", activity_types.list_types, METADATA_READ, "none"),
    ("POST", r"/rest/v1/activities/external/type\.json", activity_types.create_type, METADATA_WRITE, "json"),
    ("GET", _TYPE + r"/describe\.json", activity_types.describe_type, METADATA_READ, "none"),
    ("POST", _TYPE + r"/approve\.json", activity_types.approve_type, METADATA_WRITE, "none"),
    ("POST", _TYPE + r"/discardDraft\.json", activity_types.discard_draft, METADATA_WRITE, "none"),
    ("POST", _TYPE + r"/delete\.json", activity_types.delete_type, METADATA_WRITE, "none"),
    ("POST", _TYPE + r"/attributes/create\.json", activity_types.create_attributes, METADATA_WRITE, "json"),
    ("POST", _TYPE + r"/attributes/update\.json", activity_types.update_attributes, METADATA_WRITE, "json"),
    ("POST", _TYPE + r"/attributes/delete\.json", activity_types.delete_attributes, METADATA_WRITE, "json"),
    ("POST", _TYPE + r"\.json", activity_types.update_type, METADATA_WRITE, "json"),
    # Program members.
    ("GET", r"/rest/v1/programs/members/describe\.json", members.describe, LEAD_READ, "none"),
    ("GET", r"/rest/v1/programs/(?P<program_id>\d+)/members\.json", members.get_members, LEAD_READ, "none"),
    ("POST", r"/rest/v1/programs/(?P<program_id>\d+)/members/status\.json", members.sync_status, LEAD_WRITE, "json"),
    # Assets.
    ("GET", r"/rest/asset/v1/channels\.json", assets.list_channels, ASSETS_READ, "none"),
    ("GET", r"/rest/asset/v1/channel/byName\.json", assets.channel_by_name, ASSETS_READ, "none"),
    ("GET", r"/rest/asset/v1/folder/byName\.json", assets.folder_by_name, ASSETS_READ, "none"),
    ("GET", r"/rest/asset/v1/folder/(?P<id>\d+)\.json", assets.folder_by_id, ASSETS_READ, "none"),
    ("GET", r"/rest/asset/v1/folders\.json", assets.list_folders, ASSETS_READ, "none"),
    ("POST", r"/rest/asset/v1/folders\.json", assets.create_folder, ASSETS_WRITE, "form"),
    ("GET", r"/rest/asset/v1/program/byName\.json", assets.program_by_name, ASSETS_READ, "none"),
    ("GET", r"/rest/asset/v1/program/(?P<id>\d+)\.json", assets.program_by_id, ASSETS_READ, "none"),
    ("GET", r"/rest/asset/v1/programs\.json", assets.list_programs, ASSETS_READ, "none"),
    ("POST", r"/rest/asset/v1/programs\.json", assets.create_program, ASSETS_WRITE, "form"),
    ("GET", r"/rest/asset/v1/tagTypes\.json", assets.list_tag_types, ASSETS_READ, "none"),
    ("GET", r"/rest/asset/v1/tagType/byName\.json", assets.tag_type_by_name, ASSETS_READ, "none"),
]

ROUTES = [Route(method, re.compile(pattern + r"\Z"), handler, permission, body) for method, pattern, handler, permission, body in _TABLE]


def match_route(method: str, path: str) -> tuple[Route | None, dict, bool]:
    """Return `(route, path_params, path_exists)` for a request.

    `path_exists` is True when some route has this path under another method,
    which Marketo rejects with 605 instead of 610.
    """
    path_exists = False
    for route in ROUTES:
        found = route.pattern.match(path)
        if not found:
            continue
        if route.method == method:
            return route, found.groupdict(), True
        path_exists = True
    return None, {}, path_exists
