"""Identity (client-credentials tokens), bearer-token checks and role permissions."""

import math
import secrets
import uuid

from .errors import ApiError, HttpError

BAD_CREDENTIALS = {"error": "unauthorized", "error_description": "Bad client credentials"}


def issue_token(state, request) -> dict:
    """Return the token response for `/identity/oauth/token`: the live token, or a new one.

    Marketo returns the same token until it expires, with `expires_in` counting
    down. Parameters come from the query string for GET and POST alike.
    """
    if request.param("grant_type") != "client_credentials":
        raise HttpError(400, {
            "error": "invalid_request",
            "error_description": "grant_type must be client_credentials",
        })
    client = state.api_clients.get(request.param("client_id") or "")
    secret = request.param("client_secret") or ""
    if client is None or not secrets.compare_digest(client["client_secret"].encode(), secret.encode()):
        raise HttpError(401, BAD_CREDENTIALS)

    now = state.now()
    token_value = state.active_tokens.get(client["client_id"])
    token = state.tokens.get(token_value) if token_value else None
    if token is None or token["expires_at"] <= now:
        # The ":sb" suffix mimics the "<uuid>:<letters>" shape of Marketo tokens.
        token_value = f"{uuid.uuid4()}:sb"
        token = {
            "client_id": client["client_id"],
            "expires_at": now + state.limits.token_ttl_seconds,
            "expiry_reported": False,
        }
        state.tokens[token_value] = token
        state.active_tokens[client["client_id"]] = token_value

    return {
        "access_token": token_value,
        "token_type": "bearer",
        "expires_in": max(0, math.floor(token["expires_at"] - now)),
        "scope": client["user"],
    }


def authenticate(state, headers: dict) -> dict:
    """Return the API client behind the request's bearer token, or raise 601/602.

    Only the Authorization header is read: Marketo deprecates the
    `access_token` query parameter, so a token sent that way is treated as
    missing.
    """
    header = headers.get("authorization", "")
    scheme, _, token_value = header.partition(" ")
    if scheme.lower() != "bearer" or not token_value.strip():
        raise ApiError("601", "Access token invalid")
    token = state.tokens.get(token_value.strip())
    if token is None:
        raise ApiError("601", "Access token invalid")

    if token["expires_at"] <= state.now():
        if state.variants["expired_token"] == "602_always" or not token["expiry_reported"]:
            token["expiry_reported"] = True
            raise ApiError("602", "Access token expired")
        raise ApiError("601", "Access token invalid")

    client = state.api_clients.get(token["client_id"])
    if client is None:
        raise ApiError("601", "Access token invalid")
    return client


def check_permission(client: dict, requirement: tuple[str, str] | None) -> None:
    """Raise 603 unless the client's role grants `requirement` = (resource, "read" or "write").

    A Read-Write permission includes the matching Read-Only one. Marketo's
    603 message does not name the missing permission, so neither does this.
    """
    if requirement is None:
        return
    resource, level = requirement
    granted = client["permissions"]
    if f"Read-Write {resource}" in granted:
        return
    if level == "read" and f"Read-Only {resource}" in granted:
        return
    raise ApiError("603", "Access denied")
