"""UTM and click-id attribution of a Docket conversation.

A conversation event may carry the widget's `attribution` object, the
visitor's `landing_page_url` and the chat's `page_url`. Each attribution key
takes the first non-empty value in that order, and `ResolvedAttribution`
records which input supplied it.

Values are kept whole here. Cutting to Marketo's limits happens only when a
value is sent (`cut_to_length`, `cut_to_bytes`), so the stored value stays
complete. Nothing in this module touches the database.
"""

import math
import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

ATTRIBUTION_KEYS = (
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "click_id",
    "click_id_type",
)

UTM_KEYS = ATTRIBUTION_KEYS[:5]

SOURCE_ATTRIBUTION = "attribution"
SOURCE_LANDING_PAGE_URL = "landing_page_url"
SOURCE_PAGE_URL = "page_url"

# Click-id URL parameter (lowercase, because parameter names are matched
# case-insensitively) -> ad network name written to Marketo's Click ID Type.
# The order is the precedence when one URL carries several click ids: Google's
# auto-tagging ids first because gclid is the most common auto-tag, then the
# other networks roughly by how often B2B sites see them. A fixed order gives
# the same click id however a redirect or a tag manager reordered the query.
CLICK_ID_PARAMETERS: dict[str, str] = {
    "gclid": "Google Ads",
    # gbraid and wbraid replace gclid on iOS traffic (app and web). The
    # Google Ads API's ClickConversion takes gclid, gbraid or wbraid.
    "gbraid": "Google Ads",
    "wbraid": "Google Ads",
    # dclid comes from Campaign Manager 360 and Display & Video 360, not Google
    # Ads. Its offline conversions go to the Campaign Manager 360 Conversions
    # API, and the Google Ads API's ClickConversion has no field for it, so a
    # marketer uploading conversions must be able to tell the two apart.
    "dclid": "Google Display",
    "msclkid": "Microsoft Ads",
    "fbclid": "Meta",
    "li_fat_id": "LinkedIn",
    "ttclid": "TikTok",
    "twclid": "X",
    # Snapchat writes the parameter as `ScCid`.
    "sccid": "Snapchat",
    "epik": "Pinterest",
    "rdt_cid": "Reddit",
    "qclid": "Quora",
    "yclid": "Yandex",
    # Impact is an affiliate and partnership platform, and its click id
    # identifies the partner click to credit with the conversion.
    "irclickid": "Impact",
}

# Marketo's email tracking token. It identifies the email recipient, not an
# ad click, so it never becomes a click id, even when a widget labels it one.
MARKETO_EMAIL_TOKEN_PARAMETER = "mkt_tok"

# Lowercase names and nicknames of networks -> the network name. Every network
# name in CLICK_ID_PARAMETERS also matches itself case-insensitively.
_NETWORK_ALIASES: dict[str, str] = {
    "google": "Google Ads",
    "adwords": "Google Ads",
    "google adwords": "Google Ads",
    "dv360": "Google Display",
    "cm360": "Google Display",
    "display & video 360": "Google Display",
    "campaign manager 360": "Google Display",
    "bing": "Microsoft Ads",
    "bing ads": "Microsoft Ads",
    "microsoft": "Microsoft Ads",
    "microsoft advertising": "Microsoft Ads",
    "meta": "Meta",
    "meta ads": "Meta",
    "facebook": "Meta",
    "facebook ads": "Meta",
    "fb": "Meta",
    "instagram": "Meta",
    "linkedin": "LinkedIn",
    "linkedin ads": "LinkedIn",
    "tiktok": "TikTok",
    "tiktok ads": "TikTok",
    "twitter": "X",
    "twitter ads": "X",
    "x": "X",
    "x ads": "X",
    "snapchat": "Snapchat",
    "snap": "Snapchat",
    "pinterest": "Pinterest",
    "reddit": "Reddit",
    "quora": "Quora",
    "yandex": "Yandex",
    "yandex direct": "Yandex",
    "impact": "Impact",
}
_NETWORK_ALIASES.update({name.lower(): name for name in CLICK_ID_PARAMETERS.values()})

ELLIPSIS = "…"
_ELLIPSIS_BYTES = len(ELLIPSIS.encode("utf-8"))
_ZERO_WIDTH_JOINER = "\u200d"
_HTML_ESCAPED_AMPERSAND = re.compile("&amp;", re.IGNORECASE)


@dataclass(frozen=True)
class ResolvedAttribution:
    """Attribution of one conversation after precedence is applied."""

    # Only keys from ATTRIBUTION_KEYS that have a non-empty value.
    values: dict[str, str] = field(default_factory=dict)
    # Key -> "attribution", "landing_page_url" or "page_url", for every key in `values`.
    sources: dict[str, str] = field(default_factory=dict)


def parse_url_attribution(url: str | None) -> dict[str, str]:
    """Parse the UTM parameters and the click id out of a URL.

    Returns the ATTRIBUTION_KEYS found, with `click_id_type` holding the
    network name. Parameter names are case-insensitive, values are
    percent-decoded (`+` is a space) and trimmed, and empty values count as
    missing. Never raises: input that is not a URL gives an empty dict.
    """
    parameters = _url_parameters(url)

    found = {key: parameters[key] for key in UTM_KEYS if key in parameters}

    click_ids = _click_ids(parameters)
    if click_ids:
        parameter, value = click_ids[0]
        found["click_id"] = value
        found["click_id_type"] = CLICK_ID_PARAMETERS[parameter]

    return found


def click_id_type_name(value: str | None) -> str:
    """Map a click-id parameter or network nickname to the ad network name.

    `"gclid"`, `"google"` and `"Google Ads"` all give `"Google Ads"`. Matching
    ignores case, and spaces, `_` and `-` between words. An unknown value is
    returned trimmed, and None or a blank value gives "".
    """
    if not isinstance(value, str):
        return ""

    trimmed = value.strip()
    lowered = trimmed.lower()
    if lowered in CLICK_ID_PARAMETERS:
        return CLICK_ID_PARAMETERS[lowered]

    # "google_ads", "Google-Ads" and "google  ads" are the same nickname.
    words = lowered.replace("_", " ").replace("-", " ").split()
    return _NETWORK_ALIASES.get(" ".join(words), trimmed)


def resolve_attribution(
    attribution: dict | None,
    landing_page_url: str | None,
    page_url: str | None,
) -> ResolvedAttribution:
    """Resolve a conversation's attribution from the widget object and its URLs.

    Each UTM key takes the first non-empty value from the `attribution`
    object, then the landing page URL, then the page URL. The click id and
    its type are resolved as a pair, so the type always describes the id:

    - When the object has a `click_id`, the object's type is used. Without
      one, the type comes from a URL parameter that carried the same value.
    - Otherwise the first URL with a click id supplies both. When the object
      names only a type, a click id of that network in the URL is preferred.
    - A type given by the object with no click id anywhere is kept, because
      it still names the network that sent the visitor.

    Never raises on malformed input.
    """
    object_values = _object_values(attribution)
    url_inputs = [
        (SOURCE_LANDING_PAGE_URL, _url_parameters(landing_page_url)),
        (SOURCE_PAGE_URL, _url_parameters(page_url)),
    ]

    values: dict[str, str] = {}
    sources: dict[str, str] = {}

    for key in UTM_KEYS:
        if key in object_values:
            values[key] = object_values[key]
            sources[key] = SOURCE_ATTRIBUTION
            continue

        for source, parameters in url_inputs:
            if key in parameters:
                values[key] = parameters[key]
                sources[key] = source
                break

    _resolve_click_id(object_values, url_inputs, values, sources)

    return ResolvedAttribution(values=values, sources=sources)


def cut_to_length(value: str, max_chars: int = 255) -> str:
    """Cut a value to at most `max_chars` characters, ending it with "…" when cut.

    Characters are Unicode code points, as Python's len() counts them. The
    cut never splits a code point and avoids splitting an emoji sequence or
    a letter from its combining accents. A value that fits is returned
    unchanged.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")

    # NOTE: Marketo's string limit is taken as 255 code points. If Marketo
    # counts UTF-16 code units, a value with many emoji (two units each)
    # that fits here could still be too long there.
    if len(value) <= max_chars:
        return value

    hard_cut = max_chars - len(ELLIPSIS)
    return _end_with_ellipsis(value, hard_cut)


def cut_to_bytes(value: str, max_bytes: int = 30000) -> str:
    """Cut a value to at most `max_bytes` bytes of UTF-8, ending it with "…" when cut.

    The cut never splits a character's bytes and avoids splitting an emoji
    sequence or a letter from its combining accents. A value that fits is
    returned unchanged. Lone surrogates, which JSON escapes can produce,
    count as 3 bytes instead of raising.
    """
    if max_bytes < _ELLIPSIS_BYTES:
        raise ValueError(f"max_bytes must be at least {_ELLIPSIS_BYTES}, got {max_bytes}")

    encoded = value.encode("utf-8", "surrogatepass")
    if len(encoded) <= max_bytes:
        return value

    # Step back from the byte budget to the first byte of a character:
    # UTF-8 continuation bytes are the ones of the form 0b10xxxxxx.
    cut = max_bytes - _ELLIPSIS_BYTES
    while cut > 0 and encoded[cut] & 0xC0 == 0x80:
        cut -= 1

    kept_characters = len(encoded[:cut].decode("utf-8", "surrogatepass"))
    return _end_with_ellipsis(value, kept_characters)


def _url_parameters(url: str | None) -> dict[str, str]:
    """Return the first non-empty value of each query parameter, by lowercase name.

    Parameters in the fragment (`#/pricing?utm_source=x` or `#utm_source=x`,
    as single-page apps and some ad redirects produce) fill names the query
    lacks. The scheme and host are never parsed, so scheme-less, IDN and
    malformed hosts cannot make parsing fail.
    """
    if not isinstance(url, str):
        return {}

    # Browsers drop tabs and newlines inside a URL, and pasted URLs often
    # carry them.
    cleaned = url.strip().replace("\t", "").replace("\r", "").replace("\n", "")
    before_fragment, _, fragment = cleaned.partition("#")
    _, _, query = before_fragment.partition("?")

    if "?" in fragment:
        fragment_query = fragment.partition("?")[2]
    elif "=" in fragment:
        fragment_query = fragment
    else:
        fragment_query = ""

    parameters = _query_parameters(query)
    for name, value in _query_parameters(fragment_query).items():
        parameters.setdefault(name, value)

    return parameters


def _query_parameters(query: str) -> dict[str, str]:
    """Decode a query string into {lowercase name: first non-empty trimmed value}."""
    if not query:
        return {}

    # `&amp;` is an `&` that was HTML-escaped when the link was copied out of
    # page source or an email template. A second `?` usually comes from
    # appending "?utm_source=..." to a link that already had a query.
    # NOTE: a value containing a raw, unencoded "?" is cut at that "?".
    normalized = _HTML_ESCAPED_AMPERSAND.sub("&", query).replace("?", "&")

    parameters: dict[str, str] = {}
    for raw_name, raw_value in parse_qsl(normalized, keep_blank_values=True, errors="replace"):
        name = raw_name.strip().lower()
        value = raw_value.strip()

        # A repeated parameter keeps its first non-empty value, so a copy
        # appended later (by a redirect or a second tracking template) cannot
        # replace the value the link started with.
        if name and value and name not in parameters:
            parameters[name] = value

    return parameters


def _click_ids(parameters: dict[str, str]) -> list[tuple[str, str]]:
    """Return (parameter, value) for each click id present, in CLICK_ID_PARAMETERS order."""
    return [
        (parameter, parameters[parameter])
        for parameter in CLICK_ID_PARAMETERS
        if parameter in parameters
    ]


def _object_values(attribution: object) -> dict[str, str]:
    """Return the usable values of the widget's attribution object, trimmed.

    Numbers become strings. Booleans, objects, lists, non-finite numbers and
    blank strings are ignored, because none of them can be a UTM value.
    `click_id_type` is mapped to the network name.
    """
    if not isinstance(attribution, dict):
        return {}

    values = {}
    for key in ATTRIBUTION_KEYS:
        raw = attribution.get(key)

        if isinstance(raw, bool):
            continue
        if isinstance(raw, str):
            text = raw.strip()
        elif isinstance(raw, int):
            text = str(raw)
        elif isinstance(raw, float) and math.isfinite(raw):
            text = str(raw)
        else:
            continue

        if text:
            values[key] = text

    if "click_id_type" in values:
        if values["click_id_type"].lower() == MARKETO_EMAIL_TOKEN_PARAMETER:
            values.pop("click_id_type")
            values.pop("click_id", None)
        else:
            values["click_id_type"] = click_id_type_name(values["click_id_type"])

    return values


def _resolve_click_id(
    object_values: dict[str, str],
    url_inputs: list[tuple[str, dict[str, str]]],
    values: dict[str, str],
    sources: dict[str, str],
) -> None:
    """Fill `click_id` and `click_id_type` into `values` and `sources` as a pair."""
    object_click_id = object_values.get("click_id")
    object_type = object_values.get("click_id_type")

    if object_click_id:
        values["click_id"] = object_click_id
        sources["click_id"] = SOURCE_ATTRIBUTION

        if object_type:
            values["click_id_type"] = object_type
            sources["click_id_type"] = SOURCE_ATTRIBUTION
            return

        # The widget captured the id without its parameter name, so the URL
        # parameter that carried the same value identifies the network.
        for source, parameters in url_inputs:
            for parameter, url_value in _click_ids(parameters):
                if url_value == object_click_id:
                    values["click_id_type"] = CLICK_ID_PARAMETERS[parameter]
                    sources["click_id_type"] = source
                    return
        return

    for source, parameters in url_inputs:
        click_ids = _click_ids(parameters)
        if not click_ids:
            continue

        # When the widget named the network, take that network's id from a
        # URL that carries several.
        matching = [
            (parameter, url_value)
            for parameter, url_value in click_ids
            if CLICK_ID_PARAMETERS[parameter] == object_type
        ]
        parameter, url_value = (matching or click_ids)[0]

        values["click_id"] = url_value
        sources["click_id"] = source
        if matching:
            values["click_id_type"] = object_type
            sources["click_id_type"] = SOURCE_ATTRIBUTION
        else:
            values["click_id_type"] = CLICK_ID_PARAMETERS[parameter]
            sources["click_id_type"] = source
        return

    if object_type:
        values["click_id_type"] = object_type
        sources["click_id_type"] = SOURCE_ATTRIBUTION


def _end_with_ellipsis(value: str, hard_cut: int) -> str:
    """Keep at most `hard_cut` characters of `value`, then append "…".

    The cut moves back so that an emoji sequence or a letter with its
    combining marks is either kept whole or dropped whole. When the value
    starts with one sequence longer than the budget, the plain code-point
    cut is used instead, because keeping part of it beats keeping nothing.
    """
    cut = _grapheme_safe_cut(value, hard_cut)
    if cut == 0:
        cut = hard_cut

    # Trailing spaces would leave "spend management …" instead of "spend management…".
    return value[:cut].rstrip() + ELLIPSIS


def _grapheme_safe_cut(value: str, cut: int) -> int:
    """Move a cut position back until it does not fall inside a grapheme cluster.

    This covers combining marks, the zero-width joiner, variation selectors,
    emoji skin-tone modifiers, tag characters and regional-indicator flag
    pairs.
    """
    # TODO: Hangul jamo sequences and Indic conjuncts (virama joins) follow
    # other Unicode segmentation rules and can still be split.
    while 0 < cut < len(value) and (
        _extends_previous(value[cut]) or value[cut - 1] == _ZERO_WIDTH_JOINER
    ):
        cut -= 1

    # A flag is two regional indicators. An odd run before the cut means the
    # cut separates the two halves of one flag.
    if 0 < cut < len(value) and _is_regional_indicator(value[cut]):
        run_start = cut
        while run_start > 0 and _is_regional_indicator(value[run_start - 1]):
            run_start -= 1
        if (cut - run_start) % 2 == 1:
            cut -= 1

    return cut


def _extends_previous(character: str) -> bool:
    code_point = ord(character)
    return (
        unicodedata.category(character) in ("Mn", "Me", "Mc")
        or character == _ZERO_WIDTH_JOINER
        or 0xFE00 <= code_point <= 0xFE0F
        or 0x1F3FB <= code_point <= 0x1F3FF
        or 0xE0020 <= code_point <= 0xE007F
    )


def _is_regional_indicator(character: str) -> bool:
    return 0x1F1E6 <= ord(character) <= 0x1F1FF
