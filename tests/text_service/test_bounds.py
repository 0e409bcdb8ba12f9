"""String limits beside the grammar: the cursor's bookkeeping over nested JSON, and the token mask
arithmetic, on a small synthetic vocabulary with known answers."""

import json

import torch

from sdg.schema import normalize_schema
from text_service.bounds import StringBounds
from text_service.cursor import RowCursor, SchemaIndex

VOCAB = [b"a", b"bc", b"de ", b"fghij", b'"', b'",', b'k"', b" ", b"\xc3", b"\xa9", b"{", b'xyz", "b": ']
SCHEMA = normalize_schema(
    {
        "name": {"type": "string", "maxLength": 5},
        "code": {"type": "string", "pattern": "[A-Z]+"},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}, "maxItems": 3},
        "inner": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 4}, "n": "int"}},
        "plain": {"type": ["string", "null"], "maxLength": 2},
    }
)


def bounds() -> StringBounds:
    return StringBounds(VOCAB, len(VOCAB), torch.device("cpu"))


def cursor() -> RowCursor:
    return RowCursor(bounds(), SchemaIndex(SCHEMA), budget=10_000)


def limits_along(text: str) -> list[int | None]:
    """The cursor's character limit after every character of `text`."""
    row = cursor()
    seen = []
    for char in text:
        row.feed_bytes(char.encode())
        seen.append(row.limit())
    return seen


def test_cursor_knows_each_open_strings_limit():
    row = {"name": "Al", "code": "XY", "tags": ["ab", "c"], "inner": {"city": "Rome", "n": 3}, "plain": None}
    text = json.dumps(row)
    seen = limits_along(text)
    at = lambda fragment, offset=0: seen[text.index(fragment) + offset]  # noqa: E731
    assert at('"Al"') == 5 and at('"Al"', 2) == 3  # opening quote: 5 left; after "Al": 3
    assert at('"name"') is None and at('"code"') is None  # keys are not limited
    assert at('"XY"', 1) is None  # a pattern string is the grammar's business
    assert at('"ab"', 1) == 2 and at('"c"', 1) == 2  # array items, each its own string
    assert at('"Rome"', 4) == 0  # nested object, its own key
    assert at("null") is None and seen[-1] is None


def test_tokens_and_bytes_agree():
    by_token, by_bytes = cursor(), cursor()
    by_bytes.feed_bytes(b'{"name": "bc\xc3\xa9de ')
    by_token.feed_bytes(b'{"name": "')
    for token in (1, 8, 9, 2):
        by_token.feed_token(token)
    assert by_token.limit() == by_bytes.limit()
    assert by_token.limit() == 5 - 2 - 1 - 3  # a two-byte character counts once


def test_mask_allows_what_fits_and_never_a_trailing_space_at_the_limit():
    b = bounds()
    logits = torch.zeros(4, len(VOCAB))
    b.mask_(logits, [None, 3, 1, 0])
    allowed = [{VOCAB[t] for t in range(len(VOCAB)) if logits[row, t] == 0} for row in range(4)]
    assert allowed[0] == set(VOCAB)  # no limit
    # 3 left: up to 3 characters, but "de " would end the string on a space it cannot close after.
    assert b"fghij" not in allowed[1] and b"de " not in allowed[1] and b"bc" in allowed[1]
    assert b'xyz", "b": ' in allowed[1]  # 3 characters, then the quote closes the string
    assert allowed[2] == {b"a", b'"', b'",', b'k"', b"\xc3", b"\xa9", b"{"}  # one character at most
    assert allowed[3] == {b'"', b'",', b"\xa9"}  # only closing (or finishing a character)
