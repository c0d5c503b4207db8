"""Turn a seed object into the live records of a SandboxState.

Every problem raises SeedError naming the seed key, the value and the fix,
so a broken `--seed` file fails at start-up instead of at the first call.
"""

from .seed import (
    ACTIVITY_ATTRIBUTE_TYPES,
    LEAD_DATA_TYPES,
    STANDARD_LEAD_FIELDS,
    SeedError,
    normalize_permission,
    program_type_code,
)

MARKETING_ACTIVITIES = "Marketing Activities"
DESIGN_STUDIO = "Design Studio"


def load_into(state, seed: dict) -> None:
    """Fill `state` (already reset to empty collections) from `seed`."""
    now = state.now()
    state.munchkin_id = seed.get("munchkin_id", "123-ABC-456")

    _load_api_clients(state, seed.get("api_clients", []))
    _load_channels(state, seed.get("channels", []), now)
    _load_folders(state, seed.get("folders", []), now)
    _load_tag_types(state, seed.get("tag_types", []))
    _load_programs(state, seed.get("programs", []), now)
    _load_lead_fields(state, seed.get("lead_fields", []))
    _load_leads(state, seed.get("leads", []), now)
    _load_members(state, seed.get("program_members", []), now)
    _load_activity_types(state, seed.get("activity_types", []), now)
    state.standard_activity_types = list(seed.get("standard_activity_types", []))


def _require(entry: dict, key: str, where: str):
    if not isinstance(entry, dict) or entry.get(key) in (None, ""):
        raise SeedError(f"Seed {where} entry {entry!r} is missing {key!r}; add it.")
    return entry[key]


def _load_api_clients(state, clients: list) -> None:
    for entry in clients:
        client_id = _require(entry, "client_id", "api_clients")
        secret = _require(entry, "client_secret", "api_clients")
        user = _require(entry, "user", "api_clients")
        permissions = {normalize_permission(name) for name in entry.get("permissions", [])}
        state.api_clients[client_id] = {
            "client_id": client_id,
            "client_secret": secret,
            "user": user,
            "permissions": permissions,
        }


def _load_channels(state, channels: list, now: float) -> None:
    for entry in channels:
        name = _require(entry, "name", "channels")
        program_type = _require(entry, "applicableProgramType", "channels")
        code = program_type_code(program_type)
        if code is None:
            raise SeedError(
                f"Channel {name!r} has applicableProgramType {program_type!r}; use program, event, webinar, nurture or email_batch."
            )
        statuses = []
        for status in entry.get("progressionStatuses", []):
            statuses.append({
                "name": _require(status, "name", f"channel {name!r} progressionStatuses"),
                "step": int(status.get("step", 0)),
                "success": bool(status.get("success", False)),
                "hidden": bool(status.get("hidden", False)),
                "description": status.get("description"),
            })
        channel_id = int(entry.get("id") or state.take_id("channel"))
        state.next_ids["channel"] = max(state.next_ids["channel"], channel_id + 1)
        state.channels[channel_id] = {
            "id": channel_id,
            "name": name,
            "applicableProgramType": code,
            "progressionStatuses": statuses,
            "createdAt": now,
            "updatedAt": now,
        }


def new_folder(state, name: str, parent_id: int | None, now: float, **extra) -> dict:
    """Create a folder record under `parent_id` and return it."""
    folder_id = int(extra.pop("id", None) or state.take_id("folder"))
    state.next_ids["folder"] = max(state.next_ids["folder"], folder_id + 1)
    parent = state.folders.get(parent_id) if parent_id is not None else None
    folder = {
        "id": folder_id,
        "name": name,
        "description": extra.get("description"),
        "parentId": parent_id,
        "folderType": extra.get("folderType") or "Marketing Folder",
        "isSystem": bool(extra.get("isSystem", False)),
        "isArchive": bool(extra.get("isArchive", False)),
        "workspace": extra.get("workspace") or (parent["workspace"] if parent else "Default"),
        "root": parent["root"] if parent else name,
        "path": f"{parent['path']}/{name}" if parent else f"/{name}",
        "createdAt": now,
        "updatedAt": now,
    }
    state.folders[folder_id] = folder
    return folder


def resolve_folder(state, reference, where: str) -> dict:
    """Find a seeded folder by id or by name, raising SeedError if none or several match."""
    if isinstance(reference, int) or (isinstance(reference, str) and reference.isdigit()):
        folder = state.folders.get(int(reference))
        if folder is None:
            raise SeedError(f"Seed {where} names folder id {reference}, which does not exist.")
        return folder
    matches = [folder for folder in state.folders.values() if folder["name"] == reference]
    if len(matches) != 1:
        problem = "no folder has" if not matches else "several folders have"
        raise SeedError(f"Seed {where} names folder {reference!r}, but {problem} that name; use a folder id.")
    return matches[0]


def _load_folders(state, folders: list, now: float) -> None:
    # Both roots always exist, whatever the seed lists.
    seeded_names = {entry.get("name") for entry in folders if isinstance(entry, dict) and entry.get("parent") is None}
    for root in (MARKETING_ACTIVITIES, DESIGN_STUDIO):
        if root not in seeded_names:
            new_folder(state, root, None, now, isSystem=True, folderType="Marketing Folder")

    for entry in folders:
        name = _require(entry, "name", "folders")
        parent_reference = entry.get("parent")
        parent_id = None if parent_reference is None else resolve_folder(state, parent_reference, f"folder {name!r}")["id"]
        extra = {key: entry[key] for key in ("id", "description", "folderType", "isSystem", "isArchive", "workspace") if key in entry}
        if parent_id is None:
            extra.setdefault("isSystem", True)
        new_folder(state, name, parent_id, now, **extra)


def _load_tag_types(state, tag_types: list) -> None:
    for entry in tag_types:
        name = _require(entry, "tagType", "tag_types")
        codes = []
        for program_type in entry.get("applicableProgramTypes", []):
            code = program_type_code(program_type)
            if code is None:
                raise SeedError(f"Tag type {name!r} has unknown applicableProgramTypes value {program_type!r}.")
            codes.append(code)
        state.tag_types[name] = {
            "tagType": name,
            "required": bool(entry.get("required", False)),
            "applicableProgramTypes": codes,
            "allowableValues": list(entry.get("allowableValues", [])),
        }


def _load_programs(state, programs: list, now: float) -> None:
    for entry in programs:
        name = _require(entry, "name", "programs")
        code = program_type_code(_require(entry, "type", f"program {name!r}"))
        channel_name = _require(entry, "channel", f"program {name!r}")
        channel = next((c for c in state.channels.values() if c["name"] == channel_name), None)
        if code is None:
            raise SeedError(f"Program {name!r} has unknown type {entry['type']!r}; use Default, Event, Event with Webinar, Engagement or Email.")
        if channel is None:
            raise SeedError(f"Program {name!r} names channel {channel_name!r}, which the seed does not define.")
        if channel["applicableProgramType"] != code:
            raise SeedError(
                f"Program {name!r} has type {entry['type']!r} but channel {channel_name!r} applies to "
                f"{channel['applicableProgramType']!r} programs; pick a matching channel or type."
            )
        folder = resolve_folder(state, entry.get("folder", MARKETING_ACTIVITIES), f"program {name!r}")
        program_id = int(entry.get("id") or state.take_id("program"))
        state.next_ids["program"] = max(state.next_ids["program"], program_id + 1)
        state.programs[program_id] = new_program_record(
            program_id, name, code, channel_name, folder, now,
            description=entry.get("description", ""), tags=entry.get("tags", []),
        )


def new_program_record(program_id, name, code, channel_name, folder, now, *, description="", tags=None) -> dict:
    return {
        "id": program_id,
        "name": name,
        "description": description or "",
        "typeCode": code,
        "channel": channel_name,
        "folderId": folder["id"],
        "folderName": folder["name"],
        # Engagement programs are "on"/"off" and Email programs "unlocked"/...;
        # other types print an empty status in Marketo's examples.
        "status": {"nurture": "off", "email_batch": "unlocked"}.get(code, ""),
        "workspace": folder["workspace"],
        "tags": list(tags or []),
        "costs": None,
        "createdAt": now,
        "updatedAt": now,
    }


def _load_lead_fields(state, extra_fields: list) -> None:
    for entry in [*STANDARD_LEAD_FIELDS, *extra_fields]:
        name = _require(entry, "name", "lead_fields")
        data_type = entry.get("dataType", "string")
        if data_type not in LEAD_DATA_TYPES:
            raise SeedError(f"Lead field {name!r} has unknown dataType {data_type!r}; use one of {', '.join(sorted(LEAD_DATA_TYPES))}.")
        field = {
            "name": name,
            "displayName": entry.get("displayName") or name,
            "dataType": data_type,
            "updateable": bool(entry.get("updateable", True)),
        }
        length = entry.get("length", 255 if data_type in ("string", "email", "phone", "url") else None)
        if length is not None:
            field["length"] = int(length)
        state.lead_fields[name] = field


def _load_leads(state, leads: list, now: float) -> None:
    for entry in leads:
        if not isinstance(entry, dict):
            raise SeedError(f"Seed leads entry {entry!r} must be an object of lead field values.")
        values = {key: value for key, value in entry.items() if key not in ("id", "cookies")}
        unknown = sorted(key for key in values if key not in state.lead_fields)
        if unknown:
            raise SeedError(f"Seed lead {entry!r} uses fields {unknown} that lead_fields does not define; add them there.")
        lead_id = int(entry.get("id") or state.take_id("lead"))
        state.next_ids["lead"] = max(state.next_ids["lead"], lead_id + 1)
        state.leads[lead_id] = {"id": lead_id, "values": values, "createdAt": now, "updatedAt": now}
        state.index_lead(state.leads[lead_id])
        for cookie in entry.get("cookies", []):
            state.cookies[cookie] = lead_id


def _load_members(state, members: list, now: float) -> None:
    for entry in members:
        program_id = int(_require(entry, "programId", "program_members"))
        lead_id = int(_require(entry, "leadId", "program_members"))
        status_name = _require(entry, "statusName", "program_members")
        program = state.programs.get(program_id)
        if program is None or lead_id not in state.leads:
            raise SeedError(f"Seed program_members entry {entry!r} names a program or lead that does not exist.")
        channel = next(c for c in state.channels.values() if c["name"] == program["channel"])
        status = next((s for s in channel["progressionStatuses"] if s["name"] == status_name), None)
        if status is None:
            raise SeedError(f"Seed program_members entry {entry!r} uses status {status_name!r}, not a status of channel {channel['name']!r}.")
        state.members.setdefault(program_id, {})[lead_id] = {
            "statusName": status_name,
            "step": status["step"],
            "reachedSuccess": status["success"],
            "acquiredBy": False,
            "membershipDate": now,
            "updatedAt": now,
        }


def normalize_attribute(attribute: dict, where: str) -> dict:
    """Validate one custom activity attribute definition from a seed."""
    api_name = _require(attribute, "apiName", where)
    data_type = attribute.get("dataType", "string")
    if data_type not in ACTIVITY_ATTRIBUTE_TYPES:
        raise SeedError(f"Attribute {api_name!r} in {where} has dataType {data_type!r}; use one of {', '.join(sorted(ACTIVITY_ATTRIBUTE_TYPES))}.")
    normalized = {"apiName": api_name, "name": attribute.get("name") or api_name, "dataType": data_type}
    if attribute.get("description"):
        normalized["description"] = attribute["description"]
    return normalized


def _load_activity_types(state, activity_types: list, now: float) -> None:
    for entry in activity_types:
        api_name = _require(entry, "apiName", "activity_types")
        where = f"activity type {api_name!r}"
        version = {
            "name": _require(entry, "name", where),
            "description": entry.get("description", ""),
            "triggerName": _require(entry, "triggerName", where),
            "filterName": _require(entry, "filterName", where),
            "primaryAttribute": normalize_attribute(_require(entry, "primaryAttribute", where), where),
            "attributes": [normalize_attribute(attribute, where) for attribute in entry.get("attributes", [])],
        }
        status = entry.get("status", "approved")
        if status not in ("draft", "approved", "approved with draft"):
            raise SeedError(f"{where} has status {status!r}; use draft, approved or approved with draft.")
        type_id = int(entry.get("id") or state.take_id("activity_type"))
        state.next_ids["activity_type"] = max(state.next_ids["activity_type"], type_id + 1)
        state.activity_types[api_name] = {
            "id": type_id,
            "apiName": api_name,
            "approved": None if status == "draft" else version,
            "draft": None if status == "approved" else {**version, "attributes": list(version["attributes"])},
            "createdAt": now,
            "updatedAt": now,
        }
