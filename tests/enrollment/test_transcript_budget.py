import pytest
from hypothesis import given, settings as hypothesis_settings, strategies as st

from enrollment.transcript_budget import (
    MIN_BUDGET,
    OMITTED_MARKER,
    TRUNCATED_SUFFIX,
    cut_to_budget,
    estimate_tokens,
    truncate_to_tokens,
)


def ten_token_messages(count: int) -> list[str]:
    # 40 ASCII bytes each, so exactly 10 estimated tokens.
    return [f"m{index:02d} " + "x" * 36 for index in range(count)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("abcd", 1),
        ("abcde", 2),
        ("Hello, world!", 4),
        ("é", 1),
        ("你好世界", 4),
        ("こんにちは", 5),
        ("안녕하세요", 5),
        ("hello 世界", 4),
        ("价格，谢谢。", 6),
    ],
)
def test_estimate_tokens(text, expected):
    assert estimate_tokens(text) == expected


def test_estimate_counts_cjk_denser_than_bytes():
    text = "我们公司有五百名员工" * 10

    assert estimate_tokens(text) == len(text)
    assert estimate_tokens(text) > len(text.encode("utf-8")) / 4


def test_cut_under_budget_keeps_everything():
    lines = ten_token_messages(5)

    cut = cut_to_budget(lines, 100)

    assert cut.lines == lines
    assert cut.omitted_messages == 0
    assert cut.total_messages == 5
    assert cut.estimated_tokens == 50


def test_cut_keeps_start_and_end_with_marker():
    lines = ten_token_messages(20)

    cut = cut_to_budget(lines, 100)

    # The marker costs 8 tokens, leaving 92: 36 for the head (3 messages)
    # and the remaining 62 for the tail (6 messages).
    assert cut.lines == lines[:3] + [OMITTED_MARKER.format(count=11)] + lines[-6:]
    assert cut.omitted_messages == 11
    assert cut.total_messages == 20
    assert cut.estimated_tokens <= 100


def test_cut_shortens_oversized_first_message():
    lines = ["v " + "long opening " * 200] + ten_token_messages(30)

    cut = cut_to_budget(lines, 200)

    assert cut.lines[0].startswith("v long opening")
    assert cut.lines[0].endswith(TRUNCATED_SUFFIX)
    assert cut.lines[-1] == lines[-1]
    assert OMITTED_MARKER.format(count=cut.omitted_messages) in cut.lines
    assert cut.estimated_tokens <= 200


def test_cut_shortens_oversized_last_message():
    lines = ten_token_messages(30) + ["closing " * 500]

    cut = cut_to_budget(lines, 200)

    assert cut.lines[0] == lines[0]
    assert cut.lines[-1].startswith("closing closing")
    assert cut.lines[-1].endswith(TRUNCATED_SUFFIX)
    assert cut.estimated_tokens <= 200


def test_cut_single_oversized_message_uses_whole_budget():
    cut = cut_to_budget(["word " * 1000], 100)

    assert len(cut.lines) == 1
    assert cut.omitted_messages == 0
    assert 90 <= cut.estimated_tokens <= 100


def test_cut_empty_transcript():
    cut = cut_to_budget([], 100)

    assert cut.lines == []
    assert cut.estimated_tokens == 0


def test_cut_rejects_budget_below_minimum():
    with pytest.raises(ValueError, match="OPENAI_TRANSCRIPT_TOKEN_BUDGET") as raised:
        cut_to_budget(ten_token_messages(3), MIN_BUDGET - 1)

    assert str(MIN_BUDGET - 1) in str(raised.value)


def test_truncate_fits_cjk_text():
    text = "我们讨论了价格" * 100

    shortened = truncate_to_tokens(text, 50)

    assert shortened.endswith(TRUNCATED_SUFFIX)
    assert estimate_tokens(shortened) <= 50
    assert text.startswith(shortened.removesuffix(TRUNCATED_SUFFIX))


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(st.text(min_size=1, max_size=400), min_size=2, max_size=60),
    budget=st.integers(min_value=MIN_BUDGET, max_value=2000),
)
def test_cut_invariants(lines, budget):
    cut = cut_to_budget(lines, budget)

    assert cut.estimated_tokens <= budget
    assert cut.estimated_tokens == sum(estimate_tokens(line) for line in cut.lines)
    assert cut.lines[0] == lines[0] or cut.lines[0].endswith(TRUNCATED_SUFFIX)
    assert cut.lines[-1] == lines[-1] or cut.lines[-1].endswith(TRUNCATED_SUFFIX)
    kept_messages = len(cut.lines) - (1 if cut.omitted_messages else 0)
    assert kept_messages + cut.omitted_messages == len(lines)
