"""Building Marketo request URLs and bodies: base URL, REST path, query string and body."""

import json as jsonlib
from urllib.parse import urlencode, urlsplit

MAX_BODY_BYTES = 1_048_576  # Marketo rejects bodies over 1 MB with HTTP 413.
MAX_URL_BYTES = 8_192  # Marketo rejects longer URIs with HTTP 414.

JSON_CONTENT_TYPE = "application/json"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def normalize_base_url(base_url: str) -> str:
    """Return `base_url` as scheme://host[:port], without a trailing slash.

    The Endpoint and Identity values in Admin > Web Services end in `/rest`
    and `/identity`; either suffix is accepted and dropped.
    """
    parts = urlsplit((base_url or "").strip())
    path = parts.path.rstrip("/")
    for suffix in ("/rest", "/identity"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]

    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"Invalid Marketo base URL {base_url!r}: expected https://<munchkin id>.mktorest.com, "
            "as shown under Admin > Integration > Web Services."
        )
    if path or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(
            f"Invalid Marketo base URL {base_url!r}: give only the scheme, host and port, "
            "for example https://123-ABC-456.mktorest.com."
        )
    return f"{parts.scheme}://{parts.netloc.lower()}"


def check_path(path: str) -> None:
    if not path.startswith("/rest/") or "?" in path or "//" in path or "#" in path:
        raise ValueError(
            f"Invalid Marketo REST path {path!r}: it must start with /rest/ and carry no query "
            "string (pass params instead) and no '//'."
        )


def encode_query(params) -> str:
    """Encode query parameters as Marketo expects: lists comma-separated, dicts as JSON."""
    if not params:
        return ""
    pairs = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            value = ",".join(str(item) for item in value)
        elif isinstance(value, dict):
            value = jsonlib.dumps(value, separators=(",", ":"))
        pairs.append((key, value))
    return urlencode(pairs)


def encode_body(json, form) -> tuple[bytes | None, str | None]:
    if json is not None:
        return jsonlib.dumps(json, separators=(",", ":"), ensure_ascii=False).encode("utf-8"), JSON_CONTENT_TYPE
    if form is not None:
        fields = {
            key: jsonlib.dumps(value, separators=(",", ":")) if isinstance(value, (dict, list)) else value
            for key, value in form.items()
            if value is not None
        }
        return urlencode(fields).encode("ascii"), FORM_CONTENT_TYPE
    return None, None
