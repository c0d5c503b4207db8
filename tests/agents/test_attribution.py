"""Tests of attribution parsing, precedence and value cutting."""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.attribution import (
    ATTRIBUTION_KEYS,
    CLICK_ID_PARAMETERS,
    ResolvedAttribution,
    click_id_type_name,
    cut_to_bytes,
    cut_to_length,
    parse_url_attribution,
    resolve_attribution,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_EVENTS = REPO_ROOT / "demo" / "events.jsonl"

LONG_CAMPAIGN = "q4-" + "x" * 297
GCLID = "Cj0KCQiA-example_wcB"


URL_CASES = [
    pytest.param(
        "https://www.example.com/pricing?utm_source=google&utm_medium=cpc&utm_campaign=brand"
        "&utm_content=rsa-01&utm_term=ap+automation",
        {
            "utm_source": "google",
            "utm_medium": "cpc",
            "utm_campaign": "brand",
            "utm_content": "rsa-01",
            "utm_term": "ap automation",
        },
        id="all-five-utms",
    ),
    pytest.param(
        "https://www.example.com/?utm_term=spend+management%C3%A7",
        {"utm_term": "spend managementç"},
        id="plus-and-percent-encoding",
    ),
    pytest.param(
        "https://www.example.com/?utm_term=%E8%AB%8B%E6%B1%82%E6%9B%B8%20%E8%87%AA%E5%8B%95%E5%8C%96",
        {"utm_term": "請求書 自動化"},
        id="percent-encoded-japanese",
    ),
    pytest.param(
        "https://www.example.com/?utm_term=bad%E0%A4%A&utm_source=google",
        {"utm_term": "bad\ufffd%A", "utm_source": "google"},
        id="invalid-utf8-percent-encoding",
    ),
    pytest.param(
        "https://www.example.com/?utm_source=google&utm_source=bing",
        {"utm_source": "google"},
        id="repeated-key-first-wins",
    ),
    pytest.param(
        "https://www.example.com/?utm_source=&utm_source=bing",
        {"utm_source": "bing"},
        id="repeated-key-first-empty",
    ),
    pytest.param(
        "https://www.example.com/?UTM_Source=google&Utm_Medium=cpc&GCLID=" + GCLID,
        {
            "utm_source": "google",
            "utm_medium": "cpc",
            "click_id": GCLID,
            "click_id_type": "Google Ads",
        },
        id="mixed-case-keys",
    ),
    pytest.param(
        "https://www.example.com/?utm_source=&utm_medium=cpc&gclid=",
        {"utm_medium": "cpc"},
        id="empty-values-missing",
    ),
    pytest.param(
        "https://www.example.com/?utm_source=%20%20&utm_medium",
        {},
        id="blank-and-valueless-missing",
    ),
    pytest.param(
        "https://www.example.com/?utm_source=%20google%20&utm_medium= cpc ",
        {"utm_source": "google", "utm_medium": "cpc"},
        id="whitespace-trimmed",
    ),
    pytest.param(
        "https://app.example.com/#/pricing?utm_source=x&utm_medium=y",
        {"utm_source": "x", "utm_medium": "y"},
        id="fragment-route-query",
    ),
    pytest.param(
        "https://www.example.com/pricing#utm_source=x&gclid=" + GCLID,
        {"utm_source": "x", "click_id": GCLID, "click_id_type": "Google Ads"},
        id="fragment-as-query",
    ),
    pytest.param(
        "https://www.example.com/?utm_source=query#utm_source=fragment&utm_medium=email",
        {"utm_source": "query", "utm_medium": "email"},
        id="fragment-fills-only-missing",
    ),
    pytest.param(
        "https://www.example.com/pricing#plans",
        {},
        id="plain-anchor-ignored",
    ),
    pytest.param(
        "www.example.com/?utm_source=x",
        {"utm_source": "x"},
        id="missing-scheme",
    ),
    pytest.param(
        "//example.com/?utm_source=x&utm_medium=y",
        {"utm_source": "x", "utm_medium": "y"},
        id="scheme-relative",
    ),
    pytest.param(
        "?utm_source=x",
        {"utm_source": "x"},
        id="query-only",
    ),
    pytest.param(
        "https://bücher.example/?utm_source=x",
        {"utm_source": "x"},
        id="idn-unicode-host",
    ),
    pytest.param(
        "https://xn--bcher-kva.example/?utm_source=x",
        {"utm_source": "x"},
        id="idn-punycode-host",
    ),
    pytest.param(
        "https://www.example.com/?utm_campaign=" + LONG_CAMPAIGN,
        {"utm_campaign": LONG_CAMPAIGN},
        id="long-value-kept-whole",
    ),
    pytest.param("not a url", {}, id="garbage-text"),
    pytest.param("http://[::1", {}, id="malformed-ipv6"),
    pytest.param(
        "http://[::1/landing?utm_source=x",
        {"utm_source": "x"},
        id="malformed-ipv6-with-query",
    ),
    pytest.param("http://", {}, id="scheme-only"),
    pytest.param(None, {}, id="none"),
    pytest.param("", {}, id="empty-string"),
    pytest.param("   ", {}, id="whitespace-only"),
    pytest.param(
        "  https://www.example.com/?utm_source=x\n&utm_medium=y\t ",
        {"utm_source": "x", "utm_medium": "y"},
        id="url-with-surrounding-and-inner-whitespace",
    ),
    pytest.param(
        "https://www.example.com/?utm_source=a&amp;utm_medium=b&AMP;utm_campaign=c",
        {"utm_source": "a", "utm_medium": "b", "utm_campaign": "c"},
        id="html-escaped-ampersand",
    ),
    pytest.param(
        "https://www.example.com/?page=2?utm_source=x",
        {"utm_source": "x"},
        id="second-question-mark",
    ),
    pytest.param(
        "https://www.example.com/?utm_source=a%26b&utm_medium=c%3Dd",
        {"utm_source": "a&b", "utm_medium": "c=d"},
        id="encoded-separators-in-values",
    ),
    pytest.param(
        "https://www.example.com/?mkt_tok=NDE3LVFXRS05MDIAAAAG",
        {},
        id="mkt-tok-alone-ignored",
    ),
    pytest.param(
        "https://www.example.com/?utm_source=marketo&utm_medium=email&mkt_tok=NDE3LVFXRS05MDIAAAAG",
        {"utm_source": "marketo", "utm_medium": "email"},
        id="mkt-tok-not-click-id",
    ),
    pytest.param(
        "https://www.example.com/?fbclid=IwAR1&gclid=" + GCLID,
        {"click_id": GCLID, "click_id_type": "Google Ads"},
        id="several-click-ids-google-first",
    ),
    pytest.param(
        "https://www.example.com/?ttclid=tt1&msclkid=ms1",
        {"click_id": "ms1", "click_id_type": "Microsoft Ads"},
        id="several-click-ids-fixed-order",
    ),
    pytest.param(
        "https://www.example.com/?gclid=&fbclid=IwAR1",
        {"click_id": "IwAR1", "click_id_type": "Meta"},
        id="empty-click-id-skipped",
    ),
    pytest.param(
        "https://www.example.com/?utm_id=123&utm_source_platform=sa360&ref=abc",
        {},
        id="unrelated-parameters-ignored",
    ),
    *[
        pytest.param(
            f"https://www.example.com/?{parameter}=abc-123",
            {"click_id": "abc-123", "click_id_type": network},
            id=f"click-id-{parameter}",
        )
        for parameter, network in [
            ("gclid", "Google Ads"),
            ("gbraid", "Google Ads"),
            ("wbraid", "Google Ads"),
            ("dclid", "Google Display"),
            ("msclkid", "Microsoft Ads"),
            ("fbclid", "Meta"),
            ("li_fat_id", "LinkedIn"),
            ("ttclid", "TikTok"),
            ("twclid", "X"),
            ("ScCid", "Snapchat"),
            ("epik", "Pinterest"),
            ("rdt_cid", "Reddit"),
            ("qclid", "Quora"),
            ("yclid", "Yandex"),
            ("irclickid", "Impact"),
        ]
    ],
]


@pytest.mark.parametrize(("url", "expected"), URL_CASES)
def test_parse_url_attribution(url, expected):
    assert parse_url_attribution(url) == expected


def test_parse_url_attribution_returns_only_known_keys():
    url = "https://www.example.com/?utm_source=a&utm_medium=b&foo=c&fbclid=d&mkt_tok=e"

    parsed = parse_url_attribution(url)

    assert set(parsed) <= set(ATTRIBUTION_KEYS)


def test_click_id_parameters_are_lowercase():
    for parameter in CLICK_ID_PARAMETERS:
        assert parameter == parameter.lower()

    assert "mkt_tok" not in CLICK_ID_PARAMETERS


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("gclid", "Google Ads", id="parameter-gclid"),
        pytest.param("GCLID", "Google Ads", id="parameter-uppercase"),
        pytest.param("dclid", "Google Display", id="parameter-dclid"),
        pytest.param("msclkid", "Microsoft Ads", id="parameter-msclkid"),
        pytest.param("fbclid", "Meta", id="parameter-fbclid"),
        pytest.param("li_fat_id", "LinkedIn", id="parameter-li-fat-id"),
        pytest.param("ttclid", "TikTok", id="parameter-ttclid"),
        pytest.param("twclid", "X", id="parameter-twclid"),
        pytest.param("ScCid", "Snapchat", id="parameter-sccid-snapchat-case"),
        pytest.param("google", "Google Ads", id="nickname-google"),
        pytest.param("facebook", "Meta", id="nickname-facebook"),
        pytest.param("meta", "Meta", id="nickname-meta"),
        pytest.param("bing", "Microsoft Ads", id="nickname-bing"),
        pytest.param("microsoft", "Microsoft Ads", id="nickname-microsoft"),
        pytest.param("linkedin", "LinkedIn", id="nickname-linkedin"),
        pytest.param("tiktok", "TikTok", id="nickname-tiktok"),
        pytest.param("twitter", "X", id="nickname-twitter"),
        pytest.param("x", "X", id="nickname-x"),
        pytest.param("Google Ads", "Google Ads", id="network-name-unchanged"),
        pytest.param("google ads", "Google Ads", id="network-name-lowercase"),
        pytest.param("Google_Ads", "Google Ads", id="network-name-underscore"),
        pytest.param("microsoft-ads", "Microsoft Ads", id="network-name-hyphen"),
        pytest.param("  LinkedIn  ", "LinkedIn", id="network-name-padded"),
        pytest.param("  Acme Ads ", "Acme Ads", id="unknown-trimmed"),
        pytest.param("", "", id="empty"),
        pytest.param("   ", "", id="blank"),
        pytest.param(None, "", id="none"),
    ],
)
def test_click_id_type_name(value, expected):
    assert click_id_type_name(value) == expected


def test_resolve_precedence_per_field():
    attribution = {"utm_source": "object-source"}
    landing = "https://www.example.com/?utm_source=landing-source&utm_medium=landing-medium"
    page = (
        "https://www.example.com/?utm_source=page-source&utm_medium=page-medium"
        "&utm_campaign=page-campaign"
    )

    resolved = resolve_attribution(attribution, landing, page)

    assert resolved.values == {
        "utm_source": "object-source",
        "utm_medium": "landing-medium",
        "utm_campaign": "page-campaign",
    }
    assert resolved.sources == {
        "utm_source": "attribution",
        "utm_medium": "landing_page_url",
        "utm_campaign": "page_url",
    }


def test_resolve_blank_object_values_fall_through():
    attribution = {"utm_source": "   ", "utm_medium": "", "utm_campaign": None}
    landing = "https://www.example.com/?utm_source=s&utm_medium=m&utm_campaign=c"

    resolved = resolve_attribution(attribution, landing, None)

    assert resolved.values == {"utm_source": "s", "utm_medium": "m", "utm_campaign": "c"}
    assert set(resolved.sources.values()) == {"landing_page_url"}


def test_resolve_object_values_trimmed():
    resolved = resolve_attribution({"utm_source": "  google \n"}, None, None)

    assert resolved.values == {"utm_source": "google"}


def test_resolve_non_string_object_values():
    attribution = {
        "utm_source": ["google"],
        "utm_medium": {"name": "cpc"},
        "utm_campaign": 2026,
        "utm_content": 1.5,
        "utm_term": True,
        "click_id": float("nan"),
    }
    landing = "https://www.example.com/?utm_source=bing&utm_medium=email&utm_term=t&gclid=g1"

    resolved = resolve_attribution(attribution, landing, None)

    assert resolved.values["utm_source"] == "bing"
    assert resolved.values["utm_medium"] == "email"
    assert resolved.values["utm_campaign"] == "2026"
    assert resolved.values["utm_content"] == "1.5"
    assert resolved.values["utm_term"] == "t"
    assert resolved.values["click_id"] == "g1"
    assert resolved.sources["utm_campaign"] == "attribution"
    assert resolved.sources["utm_source"] == "landing_page_url"


@pytest.mark.parametrize(
    "attribution",
    [
        pytest.param(None, id="none"),
        pytest.param({}, id="empty-object"),
        pytest.param(["utm_source", "google"], id="list"),
        pytest.param("utm_source=google", id="string"),
        pytest.param(42, id="number"),
    ],
)
def test_resolve_without_usable_object(attribution):
    landing = "https://www.example.com/?utm_source=google"

    resolved = resolve_attribution(attribution, landing, None)

    assert resolved.values == {"utm_source": "google"}
    assert resolved.sources == {"utm_source": "landing_page_url"}


def test_resolve_nothing_gives_empty_result():
    resolved = resolve_attribution(None, None, None)

    assert resolved == ResolvedAttribution(values={}, sources={})


def test_resolve_object_click_id_type_mapped():
    attribution = {"click_id": "abc", "click_id_type": "gclid"}

    resolved = resolve_attribution(attribution, None, None)

    assert resolved.values == {"click_id": "abc", "click_id_type": "Google Ads"}
    assert resolved.sources == {"click_id": "attribution", "click_id_type": "attribution"}


def test_resolve_object_click_id_beats_url():
    attribution = {"click_id": "from-object", "click_id_type": "facebook"}
    landing = "https://www.example.com/?gclid=from-url"

    resolved = resolve_attribution(attribution, landing, None)

    assert resolved.values["click_id"] == "from-object"
    assert resolved.values["click_id_type"] == "Meta"


def test_resolve_untyped_click_id_typed_by_url_value():
    attribution = {"click_id": "ms-123"}
    landing = "https://www.example.com/?gclid=other&msclkid=ms-123"

    resolved = resolve_attribution(attribution, landing, None)

    assert resolved.values["click_id"] == "ms-123"
    assert resolved.values["click_id_type"] == "Microsoft Ads"
    assert resolved.sources["click_id"] == "attribution"
    assert resolved.sources["click_id_type"] == "landing_page_url"


def test_resolve_untyped_click_id_typed_by_page_url():
    attribution = {"click_id": "tt-1"}
    landing = "https://www.example.com/?gclid=other"
    page = "https://www.example.com/pricing?ttclid=tt-1"

    resolved = resolve_attribution(attribution, landing, page)

    assert resolved.values["click_id_type"] == "TikTok"
    assert resolved.sources["click_id_type"] == "page_url"


def test_resolve_untyped_click_id_without_url_match():
    attribution = {"click_id": "unknown-id"}
    landing = "https://www.example.com/?gclid=different"

    resolved = resolve_attribution(attribution, landing, None)

    assert resolved.values == {"click_id": "unknown-id"}
    assert resolved.sources == {"click_id": "attribution"}


def test_resolve_click_id_pair_from_landing_before_page():
    landing = "https://www.example.com/?fbclid=fb-1"
    page = "https://www.example.com/?gclid=g-1"

    resolved = resolve_attribution(None, landing, page)

    assert resolved.values == {"click_id": "fb-1", "click_id_type": "Meta"}
    assert resolved.sources == {"click_id": "landing_page_url", "click_id_type": "landing_page_url"}


def test_resolve_click_id_pair_from_page_url():
    resolved = resolve_attribution(None, "https://www.example.com/", "https://www.example.com/?li_fat_id=li-1")

    assert resolved.values == {"click_id": "li-1", "click_id_type": "LinkedIn"}
    assert resolved.sources == {"click_id": "page_url", "click_id_type": "page_url"}


def test_resolve_object_type_selects_url_click_id():
    attribution = {"click_id_type": "fbclid"}
    landing = "https://www.example.com/?gclid=g-1&fbclid=fb-1"

    resolved = resolve_attribution(attribution, landing, None)

    assert resolved.values == {"click_id": "fb-1", "click_id_type": "Meta"}
    assert resolved.sources == {"click_id": "landing_page_url", "click_id_type": "attribution"}


def test_resolve_object_type_without_matching_url_id():
    attribution = {"click_id_type": "tiktok"}
    landing = "https://www.example.com/?gclid=g-1"

    resolved = resolve_attribution(attribution, landing, None)

    assert resolved.values == {"click_id": "g-1", "click_id_type": "Google Ads"}
    assert resolved.sources == {"click_id": "landing_page_url", "click_id_type": "landing_page_url"}


def test_resolve_object_type_without_any_click_id():
    resolved = resolve_attribution({"click_id_type": "li_fat_id"}, "https://www.example.com/", None)

    assert resolved.values == {"click_id_type": "LinkedIn"}
    assert resolved.sources == {"click_id_type": "attribution"}


def test_resolve_object_mkt_tok_never_click_id():
    attribution = {"utm_source": "marketo", "click_id": "NDE3LVFX", "click_id_type": "mkt_tok"}
    landing = "https://www.example.com/?mkt_tok=NDE3LVFX"

    resolved = resolve_attribution(attribution, landing, None)

    assert resolved.values == {"utm_source": "marketo"}
    assert "NDE3LVFX" not in resolved.values.values()


def test_resolve_keeps_long_values_whole():
    landing = "https://www.example.com/?utm_campaign=" + LONG_CAMPAIGN

    resolved = resolve_attribution(None, landing, None)

    assert resolved.values["utm_campaign"] == LONG_CAMPAIGN


# Expected attribution of sample conversations, copied from the demo data's
# description so that a parser change that alters them fails here.
DEMO_EXPECTATIONS = {
    # C01, organic with no UTMs anywhere.
    "conv_vpltubkp0tvp307d": ({}, {}),
    # C04, LinkedIn Ads with the attribution only in the landing page URL.
    "conv_7ui4m2ujriyir7zj": (
        {
            "utm_source": "linkedin",
            "utm_medium": "paid_social",
            "utm_campaign": "dach-security-abm-q4",
            "utm_content": "soc2-carousel",
            "click_id": "363403a0-aaaa-42a2-87b7-dfc974b17d4d",
            "click_id_type": "LinkedIn",
        },
        {key: "landing_page_url" for key in (
            "utm_source", "utm_medium", "utm_campaign", "utm_content", "click_id", "click_id_type"
        )},
    ),
    # C05, Microsoft Ads with a partial object: source and medium from the
    # object, campaign, term and msclkid from the landing page URL.
    "conv_4prvfxtz0ttjpmb9": (
        {
            "utm_source": "bing",
            "utm_medium": "cpc",
            "utm_campaign": "apac-spend-management",
            "utm_term": "spend management software",
            "click_id": "93e5a5d20b9441d7cf6870a4007583e4",
            "click_id_type": "Microsoft Ads",
        },
        {
            "utm_source": "attribution",
            "utm_medium": "attribution",
            "utm_campaign": "landing_page_url",
            "utm_term": "landing_page_url",
            "click_id": "landing_page_url",
            "click_id_type": "landing_page_url",
        },
    ),
    # C09, partner referral whose object lacks utm_content.
    "conv_sxam7t6q7kn34nde": (
        {
            "utm_source": "ledgerbridge",
            "utm_medium": "partner",
            "utm_campaign": "partner-referral-program",
            "utm_content": "partner-page",
        },
        {
            "utm_source": "attribution",
            "utm_medium": "attribution",
            "utm_campaign": "attribution",
            "utm_content": "landing_page_url",
        },
    ),
    # C11, Google Ads in the URL only, utm_term with "+" and "%C3%A7".
    "conv_ihgve31eor2bahpn": (
        {
            "utm_source": "google",
            "utm_medium": "cpc",
            "utm_campaign": "br-contas-a-pagar",
            "utm_term": "automação contas a pagar",
            "click_id": "Cj0KCQiAa_FCYIDt5ZsTtlY30sDCuZKUQNBlxI-CzRu8z9JzR9DhTueHXNbibrlSMqEuTyEALw_wcB",
            "click_id_type": "Google Ads",
        },
        None,
    ),
    # C13, Marketo email with an object, and mkt_tok in the URL ignored.
    "conv_2i80obh8ihfzx3hu": (
        {
            "utm_source": "marketo",
            "utm_medium": "email",
            "utm_campaign": "2026-11-dach-security-nurture",
            "utm_content": "watch-recording-cta",
        },
        {
            "utm_source": "attribution",
            "utm_medium": "attribution",
            "utm_campaign": "attribution",
            "utm_content": "attribution",
        },
    ),
    # C20, Google Ads object without a click id, with gclid and utm_term only in the URL.
    "conv_824isnxernewemyc": (
        {
            "utm_source": "google",
            "utm_medium": "cpc",
            "utm_campaign": "emea-ap-automation-en",
            "utm_term": "supplier payment software",
            "click_id": "Cj0KCQiAF7cG845xdjKcfcjwvY2f77kvh_COxxmPaOjRJ1z-JkAbes_XjWddTRRtWAetNOYTBCdPDgEALw_wcB",
            "click_id_type": "Google Ads",
        },
        {
            "utm_source": "attribution",
            "utm_medium": "attribution",
            "utm_campaign": "attribution",
            "utm_term": "landing_page_url",
            "click_id": "landing_page_url",
            "click_id_type": "landing_page_url",
        },
    ),
    # C22, Marketo email in the URL only, with mkt_tok.
    "conv_k7sgt4jra5r7v6im": (
        {
            "utm_source": "marketo",
            "utm_medium": "email",
            "utm_campaign": "2026-11-customer-product-update",
            "utm_content": "changelog-link",
        },
        None,
    ),
}

# Conversations whose object gives a click-id parameter name as the type.
DEMO_OBJECT_CLICK_ID_TYPES = {
    "conv_928iyd5xdotg7r5l": "Google Ads",  # C03, gclid
    "conv_hyuskkk01v238kbz": "Meta",  # C06, fbclid
    "conv_morvy075vhlfmfri": "TikTok",  # C07, ttclid
    "conv_lp33ycy5dd172a0u": "LinkedIn",  # C12, li_fat_id
    "conv_fqe1cb33pdailn6i": "Microsoft Ads",  # C15, msclkid
}


def load_demo_conversations() -> dict[str, dict]:
    conversations = {}
    with DEMO_EVENTS.open(encoding="utf-8") as lines:
        for line in lines:
            event = json.loads(line)
            if "conversation" in event:
                conversations[event["conversation"]["id"]] = event["conversation"]
    return conversations


def resolve_conversation(conversation: dict) -> ResolvedAttribution:
    return resolve_attribution(
        conversation.get("attribution"),
        conversation.get("landing_page_url"),
        conversation.get("page_url"),
    )


def test_demo_events_all_resolve():
    with DEMO_EVENTS.open(encoding="utf-8") as lines:
        events = [json.loads(line) for line in lines]

    assert len(events) == 40

    resolved_count = 0
    for event in events:
        conversation = event.get("conversation")
        if conversation is None:
            continue

        resolved = resolve_conversation(conversation)
        resolved_count += 1

        assert set(resolved.values) <= set(ATTRIBUTION_KEYS), conversation["id"]
        assert set(resolved.sources) == set(resolved.values), conversation["id"]
        assert all(value.strip() == value and value for value in resolved.values.values())
        assert "mkt_tok" not in json.dumps(resolved.values)

    assert resolved_count == 25


@pytest.mark.parametrize(
    ("conversation_id", "expected_values", "expected_sources"),
    [pytest.param(key, *expected, id=key) for key, expected in DEMO_EXPECTATIONS.items()],
)
def test_demo_conversation_attribution(conversation_id, expected_values, expected_sources):
    conversation = load_demo_conversations()[conversation_id]

    resolved = resolve_conversation(conversation)

    assert resolved.values == expected_values
    if expected_sources is not None:
        assert resolved.sources == expected_sources


@pytest.mark.parametrize(
    ("conversation_id", "expected_type"),
    [pytest.param(key, value, id=key) for key, value in DEMO_OBJECT_CLICK_ID_TYPES.items()],
)
def test_demo_object_click_id_type_mapped(conversation_id, expected_type):
    conversation = load_demo_conversations()[conversation_id]

    resolved = resolve_conversation(conversation)

    assert resolved.values["click_id_type"] == expected_type
    assert resolved.values["click_id"] == conversation["attribution"]["click_id"]


@pytest.mark.parametrize(
    ("value", "max_chars", "expected"),
    [
        pytest.param("a" * 255, 255, "a" * 255, id="exact-length-unchanged"),
        pytest.param("a" * 256, 255, "a" * 254 + "…", id="one-over-cut"),
        pytest.param("short", 255, "short", id="short-unchanged"),
        pytest.param("", 255, "", id="empty-unchanged"),
        pytest.param("é" * 10, 5, "éééé…", id="accented-letters"),
        pytest.param("請求書自動化", 4, "請求書…", id="cjk"),
        pytest.param("ab😀😀😀", 4, "ab😀…", id="emoji-whole"),
        pytest.param("abe\u0301\u0301xyz", 4, "ab…", id="combining-marks-kept-with-letter"),
        pytest.param("ab👨‍👩‍👧cd", 6, "ab…", id="zwj-sequence-dropped-whole"),
        pytest.param("ab👍🏽cd", 4, "ab…", id="skin-tone-kept-with-emoji"),
        pytest.param("ab🇩🇪🇫🇷", 5, "ab🇩🇪…", id="flag-pair-not-split"),
        pytest.param("spend management software", 18, "spend management…", id="trailing-space-dropped"),
        pytest.param("abc", 1, "…", id="limit-one"),
    ],
)
def test_cut_to_length(value, max_chars, expected):
    assert cut_to_length(value, max_chars) == expected


def test_cut_to_length_default_limit():
    cut = cut_to_length("x" * 1000)

    assert len(cut) == 255
    assert cut.endswith("…")


def test_cut_to_length_rejects_zero_limit():
    with pytest.raises(ValueError, match="max_chars"):
        cut_to_length("abc", 0)


@pytest.mark.parametrize(
    ("value", "max_bytes", "expected"),
    [
        pytest.param("a" * 10, 10, "a" * 10, id="exact-bytes-unchanged"),
        pytest.param("é" * 5, 10, "é" * 5, id="exact-bytes-multibyte-unchanged"),
        pytest.param("a" * 11, 10, "a" * 7 + "…", id="ascii-cut"),
        pytest.param("é" * 10, 10, "ééé…", id="two-byte-not-split"),
        pytest.param("é" * 10, 9, "ééé…", id="two-byte-odd-budget"),
        pytest.param("請求書自動化", 10, "請求…", id="three-byte"),
        pytest.param("😀😀😀", 10, "😀…", id="four-byte-emoji"),
        pytest.param("😀😀😀", 6, "…", id="emoji-does-not-fit"),
        pytest.param("ab👨‍👩‍👧c", 20, "ab…", id="zwj-sequence-dropped-whole"),
        pytest.param("abcd", 3, "…", id="limit-is-ellipsis"),
    ],
)
def test_cut_to_bytes(value, max_bytes, expected):
    assert cut_to_bytes(value, max_bytes) == expected


def test_cut_to_bytes_default_limit():
    cut = cut_to_bytes("ü" * 20000)

    assert len(cut.encode("utf-8")) <= 30000
    assert cut.endswith("…")
    assert cut[:-1] == "ü" * (len(cut) - 1)


def test_cut_to_bytes_lone_surrogate():
    value = "\ud800" * 10

    cut = cut_to_bytes(value, 10)

    assert cut == "\ud800\ud800…"


def test_cut_to_bytes_rejects_limit_below_ellipsis():
    with pytest.raises(ValueError, match="max_bytes"):
        cut_to_bytes("abc", 2)


URL_LIKE_TEXT = st.builds(
    lambda prefix, query, fragment: f"{prefix}?{query}#{fragment}",
    st.sampled_from(["https://www.example.com/", "www.example.com", "//x", "http://[::1", ""]),
    st.text(alphabet=st.sampled_from(list("utm_sourceGCLID=&?%#+;amp 20C3A7é😀")), max_size=80),
    st.text(max_size=40),
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), URL_LIKE_TEXT))
def test_parse_url_attribution_never_raises(text):
    parsed = parse_url_attribution(text)

    assert set(parsed) <= set(ATTRIBUTION_KEYS)
    assert all(value and value == value.strip() for value in parsed.values())


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(min_value=1, max_value=300))
def test_cut_to_length_within_limit(value, max_chars):
    cut = cut_to_length(value, max_chars)

    assert len(cut) <= max_chars
    if cut != value:
        assert cut.endswith("…")
        assert value.startswith(cut[:-1])


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(min_value=3, max_value=400))
def test_cut_to_bytes_within_limit(value, max_bytes):
    cut = cut_to_bytes(value, max_bytes)

    encoded = cut.encode("utf-8")
    assert len(encoded) <= max_bytes
    if cut != value:
        assert cut.endswith("…")
        assert value.startswith(cut[:-1])


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        JSON_VALUES,
        st.dictionaries(st.sampled_from(ATTRIBUTION_KEYS), JSON_VALUES, max_size=len(ATTRIBUTION_KEYS)),
    ),
    st.one_of(st.none(), st.text(), URL_LIKE_TEXT),
    st.one_of(st.none(), st.text(), URL_LIKE_TEXT),
)
def test_resolve_attribution_never_raises(attribution, landing_page_url, page_url):
    resolved = resolve_attribution(attribution, landing_page_url, page_url)

    assert set(resolved.values) <= set(ATTRIBUTION_KEYS)
    assert set(resolved.sources) == set(resolved.values)
    assert set(resolved.sources.values()) <= {"attribution", "landing_page_url", "page_url"}
    assert all(value and value == value.strip() for value in resolved.values.values())
