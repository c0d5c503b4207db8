"""Tests for the Marketo base URL override checks."""

import pytest
from django.core.exceptions import ValidationError

from integrations.validators import normalize_base_url, validate_base_url


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://123-ABC-456.mktorest.com", "https://123-abc-456.mktorest.com"),
        ("https://123-ABC-456.mktorest.com/", "https://123-abc-456.mktorest.com"),
        ("https://123-ABC-456.mktorest.com/rest", "https://123-abc-456.mktorest.com"),
        ("https://123-ABC-456.mktorest.com/rest/", "https://123-abc-456.mktorest.com"),
        ("https://123-ABC-456.mktorest.com/identity", "https://123-abc-456.mktorest.com"),
        ("  HTTP://127.0.0.1:8765/rest  ", "http://127.0.0.1:8765"),
        ("https://example.com:443", "https://example.com"),
        ("http://example.com:80/", "http://example.com"),
        ("http://example.com:8443", "http://example.com:8443"),
        ("http://[::1]:9000/identity", "http://[::1]:9000"),
    ],
)
def test_normalize_keeps_origin_only(value, expected):
    assert normalize_base_url(value) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("ftp://example.com", "https://"),
        ("example.com", "https://"),
        ("https://user:pass@example.com", "user name or password"),
        ("https://user@example.com", "user name or password"),
        ("https://example.com/rest/v1", "path '/rest/v1'"),
        ("https://example.com/other", "path '/other'"),
        ("https://example.com/rest?x=1", "query string"),
        ("https://example.com?", "query string"),
        ("https://example.com/#top", "fragment"),
        ("https://example.com:99999", "port"),
        ("https://:8080", "no host"),
    ],
)
def test_normalize_rejects_non_origins(value, fragment):
    with pytest.raises(ValidationError) as caught:
        normalize_base_url(value)
    message = " ".join(caught.value.messages)
    assert fragment in message
    if value.strip():
        assert repr(value) in message


def test_normalize_rejection_names_value():
    with pytest.raises(ValidationError) as caught:
        normalize_base_url("https://example.com/rest/v1/leads.json")
    assert "'https://example.com/rest/v1/leads.json'" in caught.value.messages[0]


def test_validate_allows_listed_origin(settings):
    settings.MARKETO_ALLOWED_BASE_URLS = ["http://127.0.0.1:8765"]
    assert validate_base_url("http://127.0.0.1:8765/rest") == "http://127.0.0.1:8765"


def test_validate_normalizes_setting_entries(settings):
    settings.MARKETO_ALLOWED_BASE_URLS = ["HTTPS://Sandbox.Example.com:443/identity/"]
    assert validate_base_url("https://sandbox.example.com") == "https://sandbox.example.com"


def test_validate_rejects_unlisted_loopback(settings):
    settings.MARKETO_ALLOWED_BASE_URLS = []
    with pytest.raises(ValidationError) as caught:
        validate_base_url("http://127.0.0.1:8765")
    message = caught.value.messages[0]
    assert "'http://127.0.0.1:8765' is not allowed" in message
    assert "MARKETO_ALLOWED_BASE_URLS" in message


def test_validate_rejects_other_port(settings):
    settings.MARKETO_ALLOWED_BASE_URLS = ["http://127.0.0.1:8765"]
    with pytest.raises(ValidationError) as caught:
        validate_base_url("http://127.0.0.1:8766")
    assert "add http://127.0.0.1:8766 to it" in caught.value.messages[0]


def test_validate_rejects_other_scheme(settings):
    settings.MARKETO_ALLOWED_BASE_URLS = ["https://sandbox.example.com"]
    with pytest.raises(ValidationError):
        validate_base_url("http://sandbox.example.com")


def test_validate_rejects_localhost_alias(settings):
    settings.MARKETO_ALLOWED_BASE_URLS = ["http://127.0.0.1:8765"]
    with pytest.raises(ValidationError):
        validate_base_url("http://localhost:8765")


def test_validate_rejects_invalid_before_listing(settings):
    settings.MARKETO_ALLOWED_BASE_URLS = ["http://127.0.0.1:8765"]
    with pytest.raises(ValidationError) as caught:
        validate_base_url("http://127.0.0.1:8765/rest/v1")
    assert "path" in caught.value.messages[0]
