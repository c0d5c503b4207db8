"""Offline token estimates and cutting a long transcript to a token budget.

A transcript over budget keeps its start and its end: the opening messages
show who the visitor is and why they came, the closing ones show where the
conversation ended up. Whole messages are kept from the start until 40% of
the budget is used, then from the end with the rest, and one marker line
stands for the messages in between.
"""

import math
from dataclasses import dataclass

HEAD_SHARE = 0.4
OMITTED_MARKER = "[… {count} messages omitted …]"
TRUNCATED_SUFFIX = " [… truncated …]"

# A chosen floor: the marker and two TRUNCATED_SUFFIX cost about 18 tokens, and
# below 64 little of the first and last messages' text would remain.
MIN_BUDGET = 64

# Unicode blocks whose characters are counted as one token each: CJK
# ideographs, kana, Hangul and their full-width punctuation.
CJK_RANGES = (
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x2E80, 0x2FDF),  # CJK and Kangxi radicals
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3100, 0x31FF),  # Bopomofo, Hangul compatibility Jamo, Katakana extensions
    (0x3400, 0x4DBF),  # CJK Unified Ideographs Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF00, 0xFFEF),  # Half-width and full-width forms
    (0x20000, 0x3FFFF),  # CJK Unified Ideographs Extensions B and later
)


def is_cjk(character: str) -> bool:
    code_point = ord(character)
    return any(start <= code_point <= end for start, end in CJK_RANGES)


def estimate_tokens(text: str) -> int:
    """Estimate the tokens `text` takes, without a tokenizer.

    Rule: each CJK character counts as one token, and all other text counts
    as ceil(UTF-8 bytes / 4).
    """
    # NOTE: this is an estimate, not a count, and it was not measured against
    # a real tokenizer here. OpenAI's published rule of thumb for English is
    # about 4 characters per token, so ASCII prose should land near the true
    # count. Numbers, URLs, code and rare words tokenize denser and are
    # undercounted. Accented Latin, Cyrillic and Greek letters take 2 UTF-8
    # bytes, which tends to overcount them. CJK text takes roughly one token
    # per character, whereas bytes / 4 would give about 0.75, so it is
    # counted per character instead.
    cjk_count = 0
    other_bytes = 0
    for character in text:
        if is_cjk(character):
            cjk_count += 1
        else:
            other_bytes += len(character.encode("utf-8"))
    return cjk_count + math.ceil(other_bytes / 4)


@dataclass(frozen=True)
class CutTranscript:
    """The transcript lines sent to the model and what was left out."""

    lines: list[str]
    total_messages: int
    omitted_messages: int
    estimated_tokens: int

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def cut_to_budget(lines: list[str], budget: int) -> CutTranscript:
    """Cut transcript lines, one per message, to at most `budget` estimated tokens.

    The first and the last message are always kept. A message too long for
    its share is shortened and ends with TRUNCATED_SUFFIX. Raises ValueError
    when `budget` is below MIN_BUDGET.
    """
    if budget < MIN_BUDGET:
        raise ValueError(
            f"The transcript token budget {budget} is below the minimum of {MIN_BUDGET}. "
            f"Set OPENAI_TRANSCRIPT_TOKEN_BUDGET to {MIN_BUDGET} or more."
        )

    costs = [estimate_tokens(line) for line in lines]
    if sum(costs) <= budget:
        return CutTranscript(list(lines), len(lines), 0, sum(costs))

    if len(lines) == 1:
        only = truncate_to_tokens(lines[0], budget)
        return CutTranscript([only], 1, 0, estimate_tokens(only))

    # The marker's cost is reserved first, with the largest count it could show.
    marker_cost = estimate_tokens(OMITTED_MARKER.format(count=len(lines)))
    available = budget - marker_cost
    head = _take_from_start(lines, costs, math.floor(available * HEAD_SHARE))
    head_cost = sum(estimate_tokens(line) for line in head)

    # The tail gets its 60% plus whatever the head left unused.
    tail = _take_from_end(lines[len(head):], costs[len(head):], available - head_cost)

    omitted = len(lines) - len(head) - len(tail)
    marker = [OMITTED_MARKER.format(count=omitted)] if omitted else []
    kept_lines = head + marker + tail
    return CutTranscript(kept_lines, len(lines), omitted, sum(estimate_tokens(line) for line in kept_lines))


def _take_from_start(lines: list[str], costs: list[int], budget: int) -> list[str]:
    taken_lines = []
    used = 0
    for line, cost in zip(lines, costs):
        if used + cost > budget:
            break
        taken_lines.append(line)
        used += cost

    # The first message always stays, shortened if it alone is over the share.
    if not taken_lines and lines:
        taken_lines.append(truncate_to_tokens(lines[0], budget))
    return taken_lines


def _take_from_end(lines: list[str], costs: list[int], budget: int) -> list[str]:
    taken_lines = []
    used = 0
    for line, cost in zip(reversed(lines), reversed(costs)):
        if used + cost > budget:
            break
        taken_lines.append(line)
        used += cost

    if not taken_lines and lines:
        taken_lines.append(truncate_to_tokens(lines[-1], budget))
    taken_lines.reverse()
    return taken_lines


def truncate_to_tokens(text: str, budget: int) -> str:
    """Return the longest prefix of `text` that, with TRUNCATED_SUFFIX, fits in `budget` tokens."""
    if estimate_tokens(text) <= budget:
        return text

    # Binary search on the prefix length, because the estimate is monotonic in it.
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if estimate_tokens(text[:middle] + TRUNCATED_SUFFIX) <= budget:
            low = middle
        else:
            high = middle - 1
    return text[:low] + TRUNCATED_SUFFIX
