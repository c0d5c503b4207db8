"""Seed files: what a sandbox instance starts with, and the vocabularies they use.

A seed is a JSON object. `load_seed` reads one from disk and `default_seed`
returns the bundled demo instance. The state module turns a seed into live
records, so this module contains only the fixed vocabularies and file reading.
"""

import json
from pathlib import Path

DEFAULT_SEED_PATH = Path(__file__).with_name("default_seed.json")

# Marketo's role editor uses "Person" where the API docs use "Lead", and both
# name the same permission. "Asset" (singular) appears in one endpoint description.
PERMISSION_ALIASES = {
    "read-only person": "Read-Only Lead",
    "read-write person": "Read-Write Lead",
    "read-only asset": "Read-Only Assets",
    "read-write asset": "Read-Write Assets",
}
PERMISSIONS = (
    "Read-Only Assets",
    "Read-Write Assets",
    "Read-Only Lead",
    "Read-Write Lead",
    "Read-Only Activity",
    "Read-Write Activity",
    "Read-Only Activity Metadata",
    "Read-Write Activity Metadata",
)

# Program types: the display name sent on create and printed in Asset API
# examples, and the internal code used in a channel's applicableProgramType.
# The pairing is inferred from Marketo's tag and channel examples.
PROGRAM_TYPE_CODES = {
    "default": "program",
    "program": "program",
    "event": "event",
    "event with webinar": "webinar",
    "webinar": "webinar",
    "engagement": "nurture",
    "nurture": "nurture",
    "email": "email_batch",
    "email_batch": "email_batch",
}
PROGRAM_TYPE_DISPLAY = {
    "program": "Default",
    "event": "Event",
    "webinar": "Event with Webinar",
    "nurture": "Engagement",
    "email_batch": "Email",
}

# Standard lead fields every instance has, with the types and lengths shown
# in Marketo's describe examples. A seed adds custom fields to these.
STANDARD_LEAD_FIELDS = (
    {"name": "id", "displayName": "Id", "dataType": "integer", "updateable": False},
    {"name": "email", "displayName": "Email Address", "dataType": "email", "length": 255, "updateable": True},
    {"name": "firstName", "displayName": "First Name", "dataType": "string", "length": 255, "updateable": True},
    {"name": "lastName", "displayName": "Last Name", "dataType": "string", "length": 255, "updateable": True},
    {"name": "company", "displayName": "Company Name", "dataType": "string", "length": 255, "updateable": True},
    {"name": "title", "displayName": "Job Title", "dataType": "string", "length": 255, "updateable": True},
    {"name": "phone", "displayName": "Phone Number", "dataType": "phone", "length": 255, "updateable": True},
    {"name": "country", "displayName": "Country", "dataType": "string", "length": 255, "updateable": True},
    {"name": "leadSource", "displayName": "Person Source", "dataType": "string", "length": 255, "updateable": True},
    {"name": "createdAt", "displayName": "Created At", "dataType": "datetime", "updateable": False},
    {"name": "updatedAt", "displayName": "Updated At", "dataType": "datetime", "updateable": False},
)
STANDARD_LEAD_FIELD_NAMES = frozenset(field["name"] for field in STANDARD_LEAD_FIELDS)
LEAD_DATA_TYPES = frozenset(
    {"string", "text", "email", "phone", "url", "integer", "float", "currency", "percent",
     "score", "boolean", "date", "datetime", "reference", "formula"}
)

ACTIVITY_ATTRIBUTE_TYPES = frozenset(
    {"string", "boolean", "integer", "float", "link", "email", "currency", "date", "datetime", "phone", "text"}
)


class SeedError(ValueError):
    """A seed value that cannot be loaded; the message names the value and the fix."""


def normalize_permission(name: str) -> str:
    """Return the canonical permission name for `name`, or raise SeedError."""
    if not isinstance(name, str):
        raise SeedError(f"Permission {name!r} is not a string. Use one of: {', '.join(PERMISSIONS)}.")
    alias = PERMISSION_ALIASES.get(name.strip().lower())
    if alias:
        return alias
    for permission in PERMISSIONS:
        if permission.lower() == name.strip().lower():
            return permission
    raise SeedError(f"Unknown permission {name!r}. Use one of: {', '.join(PERMISSIONS)} (or 'Person' for 'Lead').")


def program_type_code(text: str) -> str | None:
    """Return the internal program type code for a display or code form, case-insensitively."""
    if not isinstance(text, str):
        return None
    return PROGRAM_TYPE_CODES.get(text.strip().lower())


def load_seed(path: str | Path) -> dict:
    """Read a seed JSON file, raising SeedError with the path on a bad file."""
    seed_path = Path(path)
    try:
        text = seed_path.read_text(encoding="utf-8")
    except OSError as error:
        raise SeedError(f"Cannot read seed file {str(seed_path)!r}: {error.strerror}.") from error
    try:
        seed = json.loads(text)
    except json.JSONDecodeError as error:
        raise SeedError(
            f"Seed file {str(seed_path)!r} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}."
        ) from error
    if not isinstance(seed, dict):
        raise SeedError(f"Seed file {str(seed_path)!r} must contain a JSON object, not {type(seed).__name__}.")
    return seed


def default_seed() -> dict:
    """Return the bundled demo seed (a fresh copy each call)."""
    return load_seed(DEFAULT_SEED_PATH)
