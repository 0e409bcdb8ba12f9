"""Per-token arithmetic beside the grammar, for one tokenizer: string limits and plan masks.

String limits. A counted repetition in an xgrammar grammar (`[^"]{0,46}`, or a `max_chars` rule
budget) makes every token that might overrun the count "uncertain": xgrammar re-parses each of
them on every mask fill (xgrammar issue #852). With a 151k-token vocabulary that is milliseconds
per row per step, and a random-weight model, which never closes a string early, spends most of
its string tokens right there. So RowGrammar writes plain strings unbounded (masks in
microseconds), and StringBounds keeps them within their limit (maxLength, or what the row's
token budget leaves, text_service.cursor): a token is allowed in a string with `r` characters
left when it adds fewer than `r`, or exactly `r` that do not end in a space (the grammar forbids
a trailing space, so a string that fills its limit with one could not be closed). Every string
character is a single-character token in a byte-level vocabulary, so the allowed set is never
empty.

Plan masks. Where a row's plan (text_service.cursor) decides what comes after a value (the next
key, or the end of the object) and the model's token could run past the value's end (`",` or
`5}`), the tokens whose text past that point contradicts the plan are masked. PlanTails holds,
for every token, that text for each situation (inside a string, a number, at a value's start, or
just after a value) and each number of containers to close on the way.
"""

from __future__ import annotations

from collections import defaultdict
import torch

from sdg.devices import to_device

QUOTE, BACKSLASH, SPACE = 0x22, 0x5C, 0x20
STRUCTURAL = frozenset(b'"{}[],:')
CLOSERS = frozenset(b"}]")
SCALAR_END = frozenset(b",}] ")
# Situations a row's next token starts in, relative to the value being written.
IN_STRING, IN_SCALAR, AT_START, AFTER = "string", "scalar", "start", "after"
# A forced number just ended (a sampled value): the next token must start with a byte that ends it.
ENDED = "ended"
MAX_LEVELS = 3  # containers a plan mask looks through to reach the planned one


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
        # For RowCursor's fast paths: a token without quote or backslash stays inside an open
        # string; one without structural bytes changes nothing outside strings.
        self.chars = [chars for chars, _ in heads]
        self.ends_space = [space for _, space in heads]
        self.inside_plain = plain
        self.outside_plain = flat
        self.decoded = decoded_vocab
        self.quote = next((t for t, data in enumerate(decoded_vocab[:vocab_size]) if data == b'"'), None)
        self.max_chars = max(self.chars, default=0)
        self._head = torch.tensor(self.chars, dtype=torch.int32, device=device)
        self._space = torch.tensor(self.ends_space, dtype=torch.bool, device=device)
        self.device = device
        self._tails: PlanTails | None = None
        self._bans: dict[tuple, torch.Tensor] = {}

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

    def closes(self, bitmask: torch.Tensor, row: int) -> bool:
        """Whether row `row`'s grammar mask lets its open string close now (allows the quote)."""
        if self.quote is None:
            return False
        return bool((int(bitmask[row, self.quote >> 5]) >> (self.quote & 31)) & 1)

    def ban_(self, logits: torch.Tensor, plans: list[tuple | None]) -> None:
        """Disallows, in place, the tokens that contradict each row's plan: `plans[j]` is row j's
        (situation, levels, text, open) as RowCursor.plan_situation() gives it, or None."""
        rows, tokens = [], []
        for j, situation in enumerate(plans):
            if situation is None:
                continue
            banned = self._banned(situation)
            if banned.numel():
                rows.append(torch.full_like(banned, j))
                tokens.append(banned)
        if tokens:  # one scatter for the whole batch
            logits.index_put_((torch.cat(rows).to(logits.device), torch.cat(tokens).to(logits.device)), torch.tensor(float("-inf"), dtype=logits.dtype, device=logits.device))

    def _banned(self, situation: tuple) -> torch.Tensor:
        banned = self._bans.get(situation)
        if banned is None:
            if self._tails is None:
                self._tails = PlanTails(self.decoded)
            if situation[0] == ENDED:  # (ENDED, the plan's own situation or None)
                ids = [t for t, data in enumerate(self.decoded[: self._head.shape[0]]) if not data or data[0] not in SCALAR_END]
                if situation[1] is not None:
                    ids = sorted(set(ids) | set(self._tails.contradicting(*situation[1])))
            else:
                ids = self._tails.contradicting(*situation)
            ids = [t for t in ids if t < self._head.shape[0]]
            banned = to_device(ids, torch.int64, self.device)
            if len(self._bans) < 4096:
                self._bans[situation] = banned
        return banned


class PlanTails:
    """For each token: the bytes it would write past the planned choice (None: it does not get
    there), by situation and by how many containers lie between (text_service.cursor)."""

    def __init__(self, decoded_vocab: list[bytes]):
        self.by_situation: dict[tuple[str, int], dict[bytes, list[int]]] = defaultdict(lambda: defaultdict(list))
        self.closers_first: list[int] = []
        for token, data in enumerate(decoded_vocab):
            if not data or not STRUCTURAL.intersection(data):
                continue
            if data[0] in CLOSERS:
                self.closers_first.append(token)
            for situation in (IN_STRING, IN_SCALAR, AT_START, AFTER):
                for levels in range(0 if situation != AFTER else 1, MAX_LEVELS + 1):
                    tail = crossing(data, situation, levels)
                    if tail is not None:
                        self.by_situation[(situation, levels)][tail].append(token)

    def contradicting(self, situation: str, levels: int, text: bytes, open_: bool) -> list[int]:
        if situation == AFTER and levels == 0:  # mid-choice: only content may follow, no closer
            return self.closers_first if open_ and not text else []
        out: list[int] = []
        for tail, tokens in self.by_situation.get((situation, levels), {}).items():
            if not compatible(tail, text, open_):
                out.extend(tokens)
        return out


def compatible(tail: bytes, text: bytes, open_: bool) -> bool:
    """Whether a token writing `tail` at a choice whose plan is `text` (followed by free content
    when `open_`) keeps to the plan."""
    if text.startswith(tail):
        return True
    if open_ and tail.startswith(text):
        rest = tail[len(text):]
        return not rest or rest[0] not in CLOSERS
    return False


def crossing(data: bytes, situation: str, levels: int) -> bytes | None:
    """The bytes of `data` past the end of the value being written and `levels` closing brackets
    after it, or None when the token ends before."""
    i = 0
    if situation == IN_STRING:
        i = _string_end(data, 0)
    elif situation == IN_SCALAR:
        i = _scalar_end(data, 0)
    elif situation == AT_START:
        i = _value_end(data, 0)
    if i is None:
        return None
    end = _past_closers(data, i, levels)
    return None if end is None else data[end:]


def _past_closers(data: bytes, i: int, levels: int) -> int | None:
    """The index past the `levels`-th closing bracket from data[i], strings and the containers
    opened on the way skipped; None when the token ends first."""
    depth = 0
    while levels:
        if i >= len(data):
            return None
        byte = data[i]
        if byte == QUOTE:
            i = _string_end(data, i + 1)
            if i is None:
                return None
            continue
        if byte in b"{[":
            depth += 1
        elif byte in CLOSERS:
            if depth:
                depth -= 1
            else:
                levels -= 1
        i += 1
    return i


def _string_end(data: bytes, i: int) -> int | None:
    """The index past the quote that closes the string `data[i:]` is inside."""
    escape = False
    while i < len(data):
        byte = data[i]
        i += 1
        if escape:
            escape = False
        elif byte == BACKSLASH:
            escape = True
        elif byte == QUOTE:
            return i
    return None


def _value_end(data: bytes, i: int) -> int | None:
    """The index past the JSON value that starts at data[i], or None when the token ends first."""
    if i >= len(data):
        return None
    byte = data[i]
    if byte == QUOTE:
        return _string_end(data, i + 1)
    if byte in b"{[":
        return _past_closers(data, i + 1, 1)
    return _scalar_end(data, i)


def _scalar_end(data: bytes, i: int) -> int | None:
    """The index of the byte that ends the number or literal at data[i], or None."""
    while i < len(data) and data[i] not in SCALAR_END:
        i += 1
    return i if i < len(data) else None
