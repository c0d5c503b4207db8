"""Asset API: channels, folders, programs and tag types under `/rest/asset/v1/`.

Asset reads that find nothing succeed with the warning below and no
`result`. Creates take application/x-www-form-urlencoded bodies whose
object-valued fields (`parent`, `folder`, `tags`) hold JSON text.
"""

from .errors import ApiError
from .seed import PROGRAM_TYPE_DISPLAY, program_type_code
from .seeding import new_folder, new_program_record
from .timeutil import format_asset_datetime

NOT_FOUND = {"warnings": ["No assets found for the given search criteria."]}
MAX_RETURN = 200
DEFAULT_RETURN = 20
FOLDER_DESCRIPTION_MAX = 2000


def _page(request, items: list) -> dict:
    max_return = request.int_param("maxReturn", DEFAULT_RETURN)
    offset = request.int_param("offset", 0)
    if not 1 <= max_return <= MAX_RETURN:
        raise ApiError("1003", f"maxReturn {max_return} is out of range 1-{MAX_RETURN}")
    if offset < 0:
        raise ApiError("1003", f"offset {offset} must not be negative")
    page = items[offset:offset + max_return]
    return {"result": page} if page else dict(NOT_FOUND)


def _required(request, name: str) -> str:
    value = request.param(name)
    if value in (None, ""):
        raise ApiError("701", f"{name} cannot be blank")
    return value


# --- channels ----------------------------------------------------------------

def channel_view(channel: dict) -> dict:
    return {
        "id": channel["id"],
        "name": channel["name"],
        "applicableProgramType": channel["applicableProgramType"],
        "progressionStatuses": [dict(status) for status in channel["progressionStatuses"]],
        "createdAt": format_asset_datetime(channel["createdAt"]),
        "updatedAt": format_asset_datetime(channel["updatedAt"]),
    }


def list_channels(state, request) -> dict:
    return _page(request, [channel_view(channel) for channel in state.channels.values()])


def channel_by_name(state, request) -> dict:
    # The docs' example sends `name`, the spec declares `Name`; both work here.
    name = request.param("name") or request.param("Name")
    if not name:
        raise ApiError("701", "name cannot be blank")
    matches = [channel_view(channel) for channel in state.channels.values() if channel["name"] == name]
    return {"result": matches} if matches else dict(NOT_FOUND)


def find_channel(state, name: str) -> dict | None:
    return next((channel for channel in state.channels.values() if channel["name"] == name), None)


# --- folders -----------------------------------------------------------------

def folder_view(state, folder: dict) -> dict:
    parent_id = folder["parentId"]
    return {
        "id": folder["id"],
        "name": folder["name"],
        "description": folder["description"],
        "folderId": {"id": folder["id"], "type": "Folder"},
        "folderType": folder["folderType"],
        "parent": {"id": parent_id, "type": "Folder"} if parent_id is not None else None,
        "path": folder["path"],
        "isArchive": folder["isArchive"],
        "isSystem": folder["isSystem"],
        "accessZoneId": 1,
        "workspace": folder["workspace"],
        "url": f"{state.base_url}/#MF{folder['id']}A1",
        "createdAt": format_asset_datetime(folder["createdAt"]),
        "updatedAt": format_asset_datetime(folder["updatedAt"]),
    }


def program_as_folder(state, program: dict) -> dict:
    """A program shown as a folder (type=Program), as folder lookups return it."""
    folder = state.folders[program["folderId"]]
    return {
        "id": program["id"],
        "name": program["name"],
        "description": program["description"],
        "folderId": {"id": program["id"], "type": "Program"},
        "folderType": "Nurture Program" if program["typeCode"] == "nurture" else "Marketing Program",
        "parent": {"id": folder["id"], "type": "Folder"},
        "path": f"{folder['path']}/{program['name']}",
        "isArchive": False,
        "isSystem": False,
        "accessZoneId": 1,
        "workspace": program["workspace"],
        "url": f"{state.base_url}/#PG{program['id']}A1",
        "createdAt": format_asset_datetime(program["createdAt"]),
        "updatedAt": format_asset_datetime(program["updatedAt"]),
    }


def _folder_reference(request, name: str, *, required: bool):
    reference = request.json_param(name)
    if reference is None:
        if required:
            raise ApiError("701", f"{name} cannot be blank; send {{\"id\": <folder id>, \"type\": \"Folder\"}}")
        return None
    if not isinstance(reference, dict) or not isinstance(reference.get("id"), int):
        raise ApiError("1003", f"Invalid {name} {reference!r}; send {{\"id\": <folder id>, \"type\": \"Folder\"}}")
    kind = str(reference.get("type", "Folder")).lower()
    if kind not in ("folder", "program"):
        raise ApiError("1003", f"Invalid {name} type {reference.get('type')!r}; use Folder or Program")
    return reference["id"], kind


def _is_under(state, folder: dict, root_id: int) -> bool:
    current = folder
    while current is not None:
        if current["id"] == root_id:
            return True
        current = state.folders.get(current["parentId"]) if current["parentId"] is not None else None
    return False


def folder_by_name(state, request) -> dict:
    name = _required(request, "name")
    kind = (request.param("type") or "Folder").lower()
    root = _folder_reference(request, "root", required=False)
    workspace = request.param("workSpace")

    if kind == "program":
        matches = [program_as_folder(state, program) for program in state.programs.values() if program["name"] == name]
    else:
        matches = [
            folder_view(state, folder) for folder in state.folders.values()
            if folder["name"] == name
            and (root is None or (folder["id"] != root[0] and _is_under(state, folder, root[0])))
            and (workspace is None or folder["workspace"] == workspace)
        ]
    return {"result": matches} if matches else dict(NOT_FOUND)


def folder_by_id(state, request) -> dict:
    kind = _required(request, "type")
    folder_id = int(request.path_params["id"])
    if kind.lower() == "program":
        program = state.programs.get(folder_id)
        return {"result": [program_as_folder(state, program)]} if program else dict(NOT_FOUND)
    folder = state.folders.get(folder_id)
    return {"result": [folder_view(state, folder)]} if folder else dict(NOT_FOUND)


def list_folders(state, request) -> dict:
    root = _folder_reference(request, "root", required=False)
    max_depth = request.int_param("maxDepth", 2)
    workspace = request.param("workSpace")
    if root is not None and root[0] not in state.folders:
        return dict(NOT_FOUND)

    def depth_below(folder: dict, root_id: int) -> int | None:
        depth, current = 0, folder
        while current is not None:
            if current["id"] == root_id:
                return depth
            depth += 1
            current = state.folders.get(current["parentId"]) if current["parentId"] is not None else None
        return None

    selected = []
    for folder in state.folders.values():
        if workspace is not None and folder["workspace"] != workspace:
            continue
        if root is None:
            selected.append(folder_view(state, folder))
            continue
        depth = depth_below(folder, root[0])
        if depth is not None and depth <= max_depth:
            selected.append(folder_view(state, folder))
    return _page(request, selected)


def create_folder(state, request) -> dict:
    name = _required(request, "name").strip()
    parent_id, parent_kind = _folder_reference(request, "parent", required=True)
    description = request.param("description") or None
    if description and len(description) > FOLDER_DESCRIPTION_MAX:
        raise ApiError("1003", f"description is {len(description)} characters; the maximum is {FOLDER_DESCRIPTION_MAX}")
    if parent_kind == "program":
        # NOTE: Marketo allows folders inside programs; the sandbox does not
        # model program contents, so it rejects them.
        raise ApiError("711", "The sandbox supports folders under folders only; use a Folder parent")
    parent = state.folders.get(parent_id)
    if parent is None:
        raise ApiError("710", f"Parent folder {parent_id} not found")

    siblings = [folder for folder in state.folders.values() if folder["parentId"] == parent_id and folder["name"] == name]
    if siblings:
        if state.variants["duplicate_folder"] == "611":
            raise ApiError("611", "System error")
        raise ApiError("709", f"Folder with the same name '{name}' already exists under folder {parent_id}")

    folder = new_folder(state, name, parent_id, state.now(), description=description)
    return {"result": [folder_view(state, folder)]}


# --- programs ----------------------------------------------------------------

def program_view(state, program: dict, *, include_tags: bool = True, include_costs: bool = True) -> dict:
    code = program["typeCode"]
    program_type = PROGRAM_TYPE_DISPLAY[code] if state.variants["program_type_format"] == "display" else code
    tags = None
    if include_tags and program["tags"]:
        tags = [dict(tag) for tag in program["tags"]]
    return {
        "id": program["id"],
        "name": program["name"],
        "description": program["description"],
        "type": program_type,
        "channel": program["channel"],
        "folder": {"type": "Folder", "value": program["folderId"], "folderName": program["folderName"]},
        "status": program["status"],
        "workspace": program["workspace"],
        "url": f"{state.base_url}/#PG{program['id']}A1",
        "tags": tags,
        "costs": program["costs"] if include_costs else None,
        "headStart": False,
        "createdAt": format_asset_datetime(program["createdAt"]),
        "updatedAt": format_asset_datetime(program["updatedAt"]),
    }


def program_by_name(state, request) -> dict:
    name = _required(request, "name")
    matches = [
        program_view(state, program, include_tags=request.param("includeTags") == "true",
                     include_costs=request.param("includeCosts") == "true")
        for program in state.programs.values() if program["name"] == name
    ]
    return {"result": matches} if matches else dict(NOT_FOUND)


def program_by_id(state, request) -> dict:
    program = state.programs.get(int(request.path_params["id"]))
    return {"result": [program_view(state, program)]} if program else dict(NOT_FOUND)


def list_programs(state, request) -> dict:
    filter_type = request.param("filterType")
    values = request.list_param("filterValues")
    programs = list(state.programs.values())
    if filter_type:
        if filter_type not in ("id", "programId", "folderId", "workspace"):
            raise ApiError("1003", f"Invalid filterType '{filter_type}'; use id, programId, folderId or workspace")
        key = {"id": "id", "programId": "id", "folderId": "folderId", "workspace": "workspace"}[filter_type]
        programs = [program for program in programs if str(program[key]) in values]
    # Browse does not return tags.
    return _page(request, [program_view(state, program, include_tags=False) for program in programs])


def _check_tags(state, code: str, tags) -> list[dict]:
    if tags is None:
        tags = []
    if not isinstance(tags, list) or not all(isinstance(tag, dict) for tag in tags):
        raise ApiError("1003", 'tags must be a JSON array of {"tagType": ..., "tagValue": ...}')
    tag_values = {tag.get("tagType"): tag.get("tagValue") for tag in tags}
    for tag_name, value in tag_values.items():
        tag_type = state.tag_types.get(tag_name)
        if tag_type is None:
            raise ApiError("709", f"Tag type '{tag_name}' does not exist")
        if tag_type["allowableValues"] and value not in tag_type["allowableValues"]:
            raise ApiError(
                "709",
                f"Tag value '{value}' is not allowed for tag type '{tag_name}'; use one of: {', '.join(tag_type['allowableValues'])}",
            )
    for tag_type in state.tag_types.values():
        if tag_type["required"] and code in tag_type["applicableProgramTypes"] and not tag_values.get(tag_type["tagType"]):
            raise ApiError(
                "709", f"Tag type '{tag_type['tagType']}' is required for {PROGRAM_TYPE_DISPLAY[code]} programs; send it in tags"
            )
    return [{"tagType": name, "tagValue": value} for name, value in tag_values.items()]


def create_program(state, request) -> dict:
    name = _required(request, "name").strip()
    type_text = _required(request, "type")
    channel_name = _required(request, "channel")
    folder_id, folder_kind = _folder_reference(request, "folder", required=True)

    code = program_type_code(type_text)
    if code is None:
        raise ApiError("1003", f"Invalid program type '{type_text}'; use Default, Event, Event with Webinar, Engagement or Email")
    channel = find_channel(state, channel_name)
    if channel is None:
        raise ApiError("709", f"Channel '{channel_name}' not found")
    if channel["applicableProgramType"] != code:
        # Marketo's channel docs allow a channel only for its applicable program
        # type. The rejection's code is undocumented, so 709 is used.
        allowed = PROGRAM_TYPE_DISPLAY[channel["applicableProgramType"]]
        raise ApiError(
            "709",
            f"Channel '{channel_name}' applies to {allowed} programs, not {PROGRAM_TYPE_DISPLAY[code]}; "
            f"create the program with type {allowed} or pick a {PROGRAM_TYPE_DISPLAY[code]} channel",
        )
    if folder_kind == "program":
        raise ApiError("711", "The sandbox creates programs in folders only; use a Folder reference")
    folder = state.folders.get(folder_id)
    if folder is None:
        raise ApiError("710", f"Folder {folder_id} not found")
    if folder["root"] != "Marketing Activities":
        raise ApiError("711", f"Folder {folder_id} is not under Marketing Activities, so it cannot hold programs")
    tags = _check_tags(state, code, request.json_param("tags"))

    if any(program["name"] == name for program in state.programs.values()):
        if state.variants["duplicate_program"] == "611":
            raise ApiError("611", "System error")
        raise ApiError("709", "Program with the same name already exists")

    program_id = state.take_id("program")
    program = new_program_record(program_id, name, code, channel_name, folder, state.now(),
                                 description=request.param("description") or "", tags=tags)
    state.programs[program_id] = program
    return {"result": [program_view(state, program)]}


# --- tag types ---------------------------------------------------------------

def list_tag_types(state, request) -> dict:
    items = [
        {"tagType": tag["tagType"], "applicableProgramTypes": ",".join(tag["applicableProgramTypes"]), "required": tag["required"]}
        for tag in state.tag_types.values()
    ]
    return _page(request, items)


def tag_type_by_name(state, request) -> dict:
    tag = state.tag_types.get(_required(request, "name"))
    if tag is None:
        return dict(NOT_FOUND)
    return {"result": [{
        "tagType": tag["tagType"],
        "applicableProgramTypes": ",".join(tag["applicableProgramTypes"]),
        "required": tag["required"],
        "allowableValues": ",".join(tag["allowableValues"]),
    }]}
