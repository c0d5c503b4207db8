"""Fitting values into Marketo's field limits before they are sent.

Limits from Marketo's field-type documentation: string, link, email and
phone fields take 255 characters, and text fields 30,000 bytes of UTF-8.
One activity's attributes together take at most 65,536 bytes. Cut values keep whole
characters and end with "…"; the full value stays in this product's database.
"""

import json
from datetime import datetime

from agents.attribution import cut_to_bytes, cut_to_length

STRING_MAX_CHARS = 255
TEXT_MAX_BYTES = 30_000
ACTIVITY_ATTRIBUTES_MAX_BYTES = 65_536
SHORT_TYPES = ("string", "link", "email", "phone", "url")


def fit_value(value, data_type: str, *, max_chars: int | None = None):
    """Return `value` converted for a Marketo field of `data_type` and cut to its limit."""
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value.isoformat()

    if data_type in SHORT_TYPES:
        return cut_to_length(str(value), max_chars or STRING_MAX_CHARS)
    if data_type in ("text", "textarea"):
        return cut_to_bytes(str(value), TEXT_MAX_BYTES)
    if data_type == "integer":
        return int(value) if not isinstance(value, bool) else int(value)
    if data_type in ("float", "currency", "percent", "score"):
        return float(value)
    if data_type == "boolean":
        if isinstance(value, str):
            return value.strip().lower() in ("true", "yes", "1")
        return bool(value)
    return value


def attributes_size(attributes: list[dict]) -> int:
    return len(json.dumps(attributes, ensure_ascii=False).encode("utf-8"))


def fit_activity_attributes(attributes: list[dict], shrinkable: tuple[str, ...]) -> list[dict]:
    """Cut the largest shrinkable text attributes until the array fits Marketo's 65,536 bytes."""
    budget = ACTIVITY_ATTRIBUTES_MAX_BYTES - 512  # room for JSON framing differences
    by_name = {attribute["apiName"]: attribute for attribute in attributes}
    for api_name in shrinkable:
        overflow = attributes_size(attributes) - budget
        if overflow <= 0:
            break
        attribute = by_name.get(api_name)
        if attribute is None or not isinstance(attribute.get("value"), str):
            continue
        current = len(attribute["value"].encode("utf-8"))
        attribute["value"] = cut_to_bytes(attribute["value"], max(1000, current - overflow - 16))
    return attributes
