"""Checks of a Marketo base URL override before any request is sent to it.

A connection normally calls `https://{munchkin_id}.mktorest.com`. Staff may
point it elsewhere (the bundled sandbox, a proxy), but only to an origin
listed exactly in `settings.MARKETO_ALLOWED_BASE_URLS`. Nothing is allowed
implicitly, loopback included, so a form field can't aim the server at an
internal address.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

# Marketo's Web Services page shows the REST endpoint ending in /rest and the
# Identity URL ending in /identity; an admin may paste either.
_PASTED_SUFFIXES = ("/rest", "/identity")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_base_url(value: str) -> str:
    """Return `value` as `scheme://host[:port]`, lower-cased, without a default port.

    A trailing `/rest` or `/identity` (and trailing slashes) is removed.
    Raises ValidationError for any other path, a query, a fragment, user
    info, a scheme other than http or https, or a missing or invalid host or port.
    """
    text = (value or "").strip()
    if not text:
        raise ValidationError("The base URL is empty. Enter an origin such as https://123-ABC-456.mktorest.com.")

    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValidationError(
            f"Base URL {value!r} is invalid: it must start with https:// or http://."
        )
    if "@" in parts.netloc:
        raise ValidationError(
            f"Base URL {value!r} is invalid: it must not contain a user name or password."
        )
    if parts.query or "?" in text:
        raise ValidationError(f"Base URL {value!r} is invalid: it must not contain a query string.")
    if parts.fragment or "#" in text:
        raise ValidationError(f"Base URL {value!r} is invalid: it must not contain a fragment.")

    host = parts.hostname
    if not host:
        raise ValidationError(f"Base URL {value!r} is invalid: it has no host name.")
    try:
        port = parts.port
    except ValueError:
        raise ValidationError(f"Base URL {value!r} is invalid: its port is not a number from 0 to 65535.") from None

    path = parts.path.rstrip("/")
    for suffix in _PASTED_SUFFIXES:
        if path.lower() == suffix:
            path = ""
    if path:
        raise ValidationError(
            f"Base URL {value!r} is invalid: it must be scheme, host and port only "
            f"(such as https://123-ABC-456.mktorest.com), without the path {parts.path!r}."
        )

    if ":" in host:
        # urlsplit strips the brackets of an IPv6 literal; an origin needs them back.
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def allowed_base_urls() -> set[str]:
    """Return the normalized origins of `settings.MARKETO_ALLOWED_BASE_URLS`.

    An entry that doesn't normalize is kept verbatim, so it can still match
    only a value spelled exactly the same way.
    """
    allowed = set()
    for entry in getattr(settings, "MARKETO_ALLOWED_BASE_URLS", []) or []:
        try:
            allowed.add(normalize_base_url(entry))
        except ValidationError:
            allowed.add(entry)
    return allowed


def validate_base_url(value: str) -> str:
    """Return the normalized form of `value` if MARKETO_ALLOWED_BASE_URLS lists it.

    Raises ValidationError naming the value and the setting to change otherwise.
    """
    normalized = normalize_base_url(value)
    if normalized not in allowed_base_urls():
        raise ValidationError(
            f"Base URL {value!r} is not allowed. A base URL override must be listed exactly "
            f"in the MARKETO_ALLOWED_BASE_URLS setting: add {normalized} to it "
            "(comma-separated in the environment) and restart the service to allow it."
        )
    return normalized
