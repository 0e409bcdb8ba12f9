"""String length limits (maxLength), enforced beside the grammar rather than inside it.

A counted repetition in an xgrammar grammar (`[^"]{0,46}`, or a `max_chars` rule budget) makes
every token that might overrun the count "uncertain": xgrammar re-parses each of them on every
mask fill (xgrammar issue #852). With a 151k-token vocabulary that is milliseconds per row per
step, and a random-weight model, which never closes a string early, spends most of its string
tokens right there. So RowGrammar writes plain strings unbounded (masks in microseconds), and
this module keeps them within maxLength:

- StringCursor follows one row's JSON as it is accepted (sampled tokens and jump-forward text) and
  knows, at any point, whether the row is inside a length-limited string and how many characters
  that string may still take;
- StringBounds holds, for every token, the characters it would add to an open string (those
  before its first quote) and whether the last of them is a space, as tensors on the model's
  device, and masks the logits of rows near their limit in one vectorized operation.

A token is allowed in a string with `r` characters left when it adds fewer than `r`, or exactly
`r` that do not end in a space (the grammar forbids a trailing space, so a string that fills its
limit with one could not be closed). Every string character is a single-character token in a
byte-level vocabulary, so the allowed set is never empty. Rows are still validated with
jsonschema after decoding, as every row is.
"""

from __future__ import annotations

import json
from typing import Any

import torch

from sdg.devices import to_device

QUOTE, BACKSLASH, SPACE = 0x22, 0x5C, 0x20
STRUCTURAL = frozenset(b'"{}[],:')


def is_plain_string(spec: dict[str, Any] | None) -> bool:
    """A string value the grammar writes as any characters: no enum, format or pattern."""
    if not spec:
        return False
    types = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
    return "string" in types and not any(key in spec for key in ("enum", "format", "pattern"))


def plain_string_limit(spec: dict[str, Any] | None) -> int | None:
    """maxLength of a string value the grammar leaves unbounded (a plain string)."""
    return spec.get("maxLength") if is_plain_string(spec) else None


def _string_chars(data: bytes) -> tuple[int, bool]:
    """Characters (UTF-8 lead bytes) before the first quote, and whether the last one is a space."""
    end = data.find(b'"')
    head = data if end < 0 else data[:end]
    chars = sum(1 for byte in head if byte & 0xC0 != 0x80)
    return chars, bool(head) and head[-1] == SPACE


class StringBounds:
    """Per-token string arithmetic for one tokenizer, on the model's device."""

    def __init__(self, decoded_vocab: list[bytes], vocab_size: int, device: torch.device):
        heads = [(0, False)] * vocab_size
        plain = [False] * vocab_size
        flat = [False] * vocab_size
        for token, data in enumerate(decoded_vocab[:vocab_size]):
            heads[token] = _string_chars(data)
            plain[token] = QUOTE not in data and BACKSLASH not in data
            flat[token] = not STRUCTURAL.intersection(data)
        # For StringCursor's fast paths: a token without quote or backslash stays inside an open
        # string; one without structural bytes changes nothing outside strings.
        self.chars = [chars for chars, _ in heads]
        self.ends_space = [space for _, space in heads]
        self.inside_plain = plain
        self.outside_plain = flat
        self.decoded = decoded_vocab
        self.max_chars = max(self.chars, default=0)
        self._head = torch.tensor(self.chars, dtype=torch.int32, device=device)
        self._space = torch.tensor(self.ends_space, dtype=torch.bool, device=device)

    def mask_(self, logits: torch.Tensor, left: list[int | None]) -> None:
        """Disallows, in place, the tokens that would overrun each row's string limit. `left[j]`
        is what row j's open string may still take, or None when no limit applies to it now."""
        near = [j for j, r in enumerate(left) if r is not None and r < self.max_chars]
        if not near:
            return
        index = to_device(near, torch.int64, logits.device)
        r = to_device([left[j] for j in near], torch.int32, logits.device)[:, None]
        head = self._head[None, :]
        over = (head > r) | ((head == r) & self._space[None, :])
        width = logits.shape[-1]
        rows = logits.index_select(0, index)
        rows[:, : self._head.shape[0]].masked_fill_(over[:, :width], float("-inf"))
        logits.index_copy_(0, index, rows)


class StringCursor:
    """Where one row's JSON text stands: the open containers, and the open string if any."""

    __slots__ = ("bounds", "stack", "expect", "in_string", "is_key", "key", "escape", "left", "free")

    def __init__(self, bounds: StringBounds, schema: dict[str, Any]):
        self.bounds = bounds
        self.stack: list[list[Any]] = []  # [spec, key or None] for objects, [items spec] for arrays
        self.expect: dict[str, Any] | None = schema  # the spec of the next value
        self.in_string = False
        self.is_key = False
        self.key = bytearray()
        self.escape = False
        self.left: int | None = None  # characters the open string may still take
        # The open string is a plain value (no enum, format or pattern): the grammar lets any
        # character or the closing quote follow, so it forces nothing and cannot be complete.
        self.free = False

    def limit(self) -> int | None:
        return self.left if self.in_string else None

    def in_free_string(self) -> bool:
        """Inside a plain string value, and not after a backslash (an escape restricts what may
        follow). The engine skips its jump-forward and completion checks here."""
        return self.in_string and self.free and not self.escape

    def feed_token(self, token: int) -> None:
        bounds = self.bounds
        if self.in_string and not self.is_key and not self.escape and bounds.inside_plain[token]:
            if self.left is not None:
                self.left -= bounds.chars[token]
            return
        if not self.in_string and bounds.outside_plain[token]:
            return
        self.feed_bytes(bounds.decoded[token])

    def feed_bytes(self, data: bytes) -> None:
        for byte in data:
            if self.in_string:
                self._string_byte(byte)
            else:
                self._structure_byte(byte)

    def _string_byte(self, byte: int) -> None:
        if self.escape:
            self.escape = False
        elif byte == BACKSLASH:
            self.escape = True
        elif byte == QUOTE:
            self.in_string = False
            if self.is_key:
                self.stack[-1][1] = json.loads(b'"' + bytes(self.key) + b'"')
            return
        if self.is_key:
            self.key.append(byte)
        elif self.left is not None and byte & 0xC0 != 0x80:
            self.left -= 1

    def _structure_byte(self, byte: int) -> None:
        if byte == QUOTE:
            self.in_string = True
            top = self.stack[-1] if self.stack else None
            self.is_key = top is not None and len(top) == 2 and top[1] is None
            self.key.clear()
            self.left = None if self.is_key else plain_string_limit(self.expect)
            self.free = not self.is_key and is_plain_string(self.expect)
        elif byte == ord("{"):
            self.stack.append([self.expect or {}, None])
        elif byte == ord("["):
            items = (self.expect or {}).get("items")
            self.stack.append([items])
            self.expect = items
        elif byte == ord(":"):
            spec, key = self.stack[-1]
            self.expect = spec.get("properties", {}).get(key)
        elif byte == ord(","):
            top = self.stack[-1]
            if len(top) == 2:
                top[1] = None  # an object's next key
            else:
                self.expect = top[0]
        elif byte in (ord("}"), ord("]")):
            self.stack.pop()
