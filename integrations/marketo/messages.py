"""Every sentence the Marketo connection flow shows to a customer.

The settings page and the `connect_marketo` command print these exact
texts. Sentences quoted in the customer setup guide (the channel message)
must stay word for word.
"""

from integrations.marketo.assets import (
    CHANNEL_NAME,
    CHANNEL_STATUS_ENGAGED,
    CHANNEL_STATUS_MEETING_BOOKED,
    FOLDER_NAME,
    PROGRAM_NAME,
)

# Names of the Access API permissions as Marketo's role editor and the setup
# guide show them. Marketo's developer docs call Person "Lead".
PERMISSION_ASSETS_READ = "Read-Only Assets"
PERMISSION_ASSETS_WRITE = "Read-Write Assets"
PERMISSION_PERSON = "Read-Write Person"
PERMISSION_ACTIVITY = "Read-Write Activity"
PERMISSION_ACTIVITY_METADATA = "Read-Write Activity Metadata"

WHERE_CREDENTIALS = (
    "Copy both again from Marketo under Admin → LaunchPoint: select the Docket service "
    "and click View Details."
)
WHERE_ACTIVITY_TYPES = "Admin → Marketo Custom Activities"


# --- Input ------------------------------------------------------------------

def invalid_munchkin_id(value: str) -> str:
    return (
        f"Munchkin Account ID {value!r} is invalid. It looks like 123-ABC-456; "
        "find it in Marketo under Admin → Munchkin."
    )


def missing_value(label: str) -> str:
    return f"The {label} is missing. {WHERE_CREDENTIALS}"


def organization_not_found(slug: str) -> str:
    return f"Organization {slug!r} not found. Create it with `python manage.py create_organization`."


# --- Credentials and network ------------------------------------------------

CREDENTIALS_REJECTED = (
    "Marketo rejected the Client ID or Client Secret. " + WHERE_CREDENTIALS
)

IP_ALLOWLIST_BLOCKED = (
    "Marketo accepted the credentials but denied access to the API (error 603 on a call "
    "that needs no permission). An IP allowlist for API access is the likely cause: ask "
    "your Marketo admin to allow this server's IP address under Admin → Web Services → "
    "IP Restrictions, then try again."
)


def unreachable(base_url: str, detail: str) -> str:
    return (
        f"Could not reach Marketo at {base_url}: {detail}. Check the Munchkin Account ID "
        "(or the base URL override) and this server's network access, then try again."
    )


def temporarily_unavailable(detail: str) -> str:
    return f"Marketo is temporarily unavailable ({detail}). Try again in a few minutes."


def rate_limited(detail: str) -> str:
    return (
        f"Marketo's shared API rate limit is still exceeded after retries ({detail}). Other "
        "integrations may be using most of it. Try again in a minute."
    )


def docket_budget_used(resume_at) -> str:
    when = f"at {resume_at:%Y-%m-%d %H:%M} UTC" if resume_at else "at midnight US Central time"
    return (
        "Docket's share of this instance's daily API quota is used up, so Docket makes no "
        f"more calls today. Try again after the quota resets {when}, or raise Docket's share "
        "of the daily quota in the connection's settings."
    )


QUOTA_EXCEEDED = (
    "Marketo's daily API quota for this instance is used up (error 607). Try again after "
    "it resets at midnight US Central time."
)


def marketo_error(action: str, detail: str) -> str:
    return f"Marketo returned an error while {action}: {detail}. Fix the cause in Marketo, then try again."


def unexpected_failure(step: str) -> str:
    return (
        f"Connecting to Marketo failed unexpectedly at the {step} step. Try again, and if it "
        "keeps failing, contact Docket support with the time of the attempt."
    )


# --- Permissions ------------------------------------------------------------

def missing_permission(permission: str) -> str:
    return (
        f"The Marketo API role is missing the {permission} permission. In Marketo, go to "
        "Admin → Users & Roles → Roles, edit the role of Docket's API-only user, grant "
        f"Access API → {permission}, then try again."
    )


def assets_read_only(asset: str, program_type: str) -> str:
    """Return the message for a 603 on creating the folder or the program.

    The setup guide grants Read-Only Assets, which can look assets up but
    not create them, so the message offers both ways forward.
    """
    return (
        f"Marketo denied creating the {asset}: creating it needs the {PERMISSION_ASSETS_WRITE} "
        f"permission, and the Marketo API role has only {PERMISSION_ASSETS_READ}. Either grant "
        f"Access API → {PERMISSION_ASSETS_WRITE} to the role, or create the folder "
        f'"{FOLDER_NAME}" under Marketing Activities and, inside it, the {program_type} program '
        f'"{PROGRAM_NAME}" on channel "{CHANNEL_NAME}" by hand. Then try again: Docket adopts '
        "assets that already exist."
    )


# --- API usage --------------------------------------------------------------

def usage_warning(used: int, quota: int) -> str:
    percent = used * 100 // quota if quota else 100
    return (
        f"Other API users have already made {used:,} of this instance's {quota:,} daily "
        f"API calls today ({percent}%). Docket shares this quota, and writeback pauses "
        "until midnight US Central time when it runs out. Ask your Marketo admin to "
        "confirm that other integrations don't use most of the daily quota."
    )


# --- Channel ------------------------------------------------------------------

# Quoted in the setup guide: keep word for word.
CHANNEL_MISSING = (
    "The Docket channel does not exist in Marketo. Please refer to the integration guide "
    "for prerequisites."
)


def channel_status_missing(status: str) -> str:
    return f'{CHANNEL_MISSING} The channel has no "{status}" status.'


def channel_statuses_out_of_order(engaged_step: int, booked_step: int) -> str:
    return (
        f'{CHANNEL_MISSING} "{CHANNEL_STATUS_ENGAGED}" (step {engaged_step}) must come before '
        f'"{CHANNEL_STATUS_MEETING_BOOKED}" (step {booked_step}).'
    )


def channel_program_type_unsupported(code: str) -> str:
    return (
        f'{CHANNEL_MISSING} The channel applies to programs of type "{code}", which Docket '
        'does not support. Create the channel with Applicable Program Type "Default".'
    )


# --- Folder and program -------------------------------------------------------

MARKETING_ACTIVITIES_MISSING = (
    "The Marketing Activities folder was not found in Marketo, so Docket can't place its "
    f'"{FOLDER_NAME}" folder. Check that the Docket API user\'s role has access to a '
    "workspace with Marketing Activities, then try again."
)


def program_conflict(program_id, differences: list[str]) -> str:
    return (
        f'A program named "{PROGRAM_NAME}" already exists in Marketo (id {program_id}) but '
        f"{'; '.join(differences)}. Docket changed nothing. Marketo can't change a program's "
        "type or channel, so rename or delete that program in Marketo, then try again."
    )


def program_difference_type(actual: str, expected: str) -> str:
    return f'its type is "{actual}", not "{expected}"'


def program_difference_channel(actual: str, expected: str) -> str:
    return f'its channel is "{actual}", not "{expected}"'


def program_difference_folder(actual_folder: str, expected_id) -> str:
    """`actual_folder` reads as 'the folder "Events"' or 'folder 12'."""
    return f'it is in {actual_folder}, not in the folder "{FOLDER_NAME}" (id {expected_id})'


def program_tag_required(marketo_message: str, program_type: str, tag_type: str, values: list[str]) -> str:
    if values:
        listed = ", ".join(f'"{value}"' for value in values[:5])
        more = ", ..." if len(values) > 5 else ""
        allowed = f" (allowed values include {listed}{more})"
    else:
        allowed = ""
    return (
        f'Marketo rejected the program "{PROGRAM_NAME}": {marketo_message}. This instance '
        f'requires the tag "{tag_type}" on {program_type} programs{allowed}. Create the '
        f'program "{PROGRAM_NAME}" on channel "{CHANNEL_NAME}" in the folder "{FOLDER_NAME}" '
        "by hand with that tag, then try again: Docket adopts it."
    )


# --- Activity types -------------------------------------------------------------

def activity_type_conflict(display_name: str, api_name: str, differences: list[str]) -> str:
    return (
        f'A custom activity type "{api_name}" already exists in Marketo but '
        f"{'; '.join(differences)}, so Docket can't use it as \"{display_name}\". Docket "
        f"changed nothing. Delete that activity type in Marketo under {WHERE_ACTIVITY_TYPES} "
        "(possible only while no smart list or campaign uses it), then try again."
    )


def activity_type_name_taken(display_name: str, field: str, value: str, other_api_name: str) -> str:
    return (
        f'Docket can\'t create the activity type "{display_name}": the {field} "{value}" '
        f'is already used by the custom activity type "{other_api_name}". Docket changed '
        f"nothing. Rename or delete that activity type in Marketo under "
        f"{WHERE_ACTIVITY_TYPES}, then try again."
    )


def activity_difference(field: str, actual, expected) -> str:
    return f'its {field} is "{actual}", not "{expected}"'


def activity_type_limit(display_name: str) -> str:
    return (
        f'Marketo has no free custom activity type slot for "{display_name}": the instance '
        "already has the maximum number of custom activity types (10 in most subscriptions, "
        "error 1027). A Marketo admin must delete an unused custom activity type under "
        f"{WHERE_ACTIVITY_TYPES}, then try again."
    )


def activity_attribute_limit(display_name: str) -> str:
    return (
        f'The activity type "{display_name}" has no room for the attributes Docket needs: '
        "Marketo allows 20 attributes per custom activity type (error 1028). Remove unused "
        f"attributes in Marketo under {WHERE_ACTIVITY_TYPES}, then try again."
    )


# --- Outcome -------------------------------------------------------------------

def connected_summary(munchkin_id: str, created: list[str], adopted: list[str], updated: list[str]) -> str:
    parts = [f"Connected to Marketo {munchkin_id}."]
    if created:
        parts.append("Created: " + "; ".join(created) + ".")
    if updated:
        parts.append("Updated: " + "; ".join(updated) + ".")
    if adopted:
        parts.append("Adopted: " + "; ".join(adopted) + ".")
    return " ".join(parts)


def new_credentials_not_saved(message: str) -> str:
    return f"The new credentials were not saved, and the previous connection keeps working: {message}"
