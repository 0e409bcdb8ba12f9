"""RowCursor: follows one row's JSON text as it decodes, knowing at every point which schema nodes
the next value may belong to, and keeps the row's plan.

What the grammar leaves to the decode loop, the cursor decides:
- how long an open string may still grow: its maxLength, and the row's token budget less the
  fewest bytes the rest of the row needs, so that no row runs out of tokens;
- the row plan, drawn from the row's seed when an object or array opens: which optional
  properties it writes (each left out at `optional_rate`, dependents kept with what needs them,
  min/maxProperties met), how many extra keys it takes, how many items an array holds.

At each choice a plan makes (the next key, or the end), the plan's text is forced, not sampled.
So is a sampled field's value (x-sdg, sdg.samplers): once its key is written, the value's text is
forced, and a number it ends is ended by the next token (plan_situation says so to the mask).
Where the model's own token could run into the choice (`",` ends a string and starts the next
key), plan_situation() tells the mask (text_service.bounds) what the plan expects. A plan the
grammar refuses (two branches of a union share a shape, say) is dropped, and the model chooses.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from text_service.bounds import AFTER, AT_START, CLOSERS, ENDED, IN_SCALAR, IN_STRING, MAX_LEVELS, QUOTE, BACKSLASH, SCALAR_END, StringBounds
from text_service.grammar import FREE_ITEMS, RowSizes, json_text, node_types

FREE: dict[str, Any] = {}
EXTRA = None  # a plan entry: a key past the listed properties, named by the model
FREE_STRING_CHARS = 48  # a free-form string value's length limit
CLOSE_IF_ABLE = -1  # limit(): the string must close as soon as the grammar lets it (its pattern or format ends)
SLACK = 16  # tokens kept back from the budget: numbers and forced text can run a little long
WHITESPACE = frozenset(b" \n\t\r")


class SchemaIndex:
    """A normalized schema's nodes, with $ref followed and unions flattened, for one engine."""

    def __init__(self, schema: dict[str, Any], text_tokens: Callable[[str], int] | None = None):
        self.schema = schema
        self.defs = schema.get("$defs", {})
        self.sizes = RowSizes(schema)
        # Tokens a forced text takes (keys and separators); bytes, at most, without a tokenizer.
        self.text_tokens = text_tokens or (lambda text: len(text.encode()))
        self._concrete: dict[int, tuple[dict[str, Any], ...]] = {}
        self._costs: dict[tuple[str, int], int] = {}
        self._required: dict[int, int] = {}

    def concrete(self, node: dict[str, Any] | None) -> tuple[dict[str, Any], ...]:
        """The nodes a value of `node` may be, none of them a $ref or an anyOf."""
        if node is None:
            return (FREE,)
        key = id(node)
        found = self._concrete.get(key)
        if found is None:
            out: list[dict[str, Any]] = []
            self._flatten(node, out, 0)
            found = self._concrete[key] = tuple(out)
        return found

    def _flatten(self, node: dict[str, Any], out: list, depth: int) -> None:
        if depth > 64:
            return
        if "$ref" in node:
            self._flatten(self.defs[node["$ref"].rsplit("/", 1)[1]], out, depth + 1)
        elif "anyOf" in node:
            for branch in node["anyOf"]:
                self._flatten(branch, out, depth + 1)
        elif not any(n is node for n in out):
            out.append(node)

    def entry_cost(self, name: str, node: dict[str, Any]) -> int:
        """The tokens a property adds to its object at most once planned small: separator and key
        (as the tokenizer writes them), and its value (in bytes, which no token count exceeds)."""
        key = (name, id(node))
        cost = self._costs.get(key)
        if cost is None:
            cost = self._costs[key] = self.text_tokens(", " + json_text(name) + ": ") + self.sizes.reserve_bytes(node)
        return cost

    def least_tokens(self, node: dict[str, Any], depth: int = 0) -> int:
        """A lower bound on the tokens of any value of `node`: its required keys as the tokenizer
        writes them, one token for each other value."""
        alternatives = self.concrete(node)
        if depth > 32 or not alternatives:
            return 1
        least = []
        for alt in alternatives:
            if alt is FREE or "enum" in alt or "properties" not in alt and alt.get("type") != "array":
                least.append(1)
            elif "properties" in alt:
                properties = alt["properties"]
                least.append(2 + sum(self.text_tokens(", " + json_text(k) + ": ") + self.least_tokens(properties[k], depth + 1)
                                     for k in alt.get("required", []) if k in properties))
            else:
                items = alt.get("items") or {}
                least.append(2 + alt.get("minItems", 0) * (1 + self.least_tokens(items, depth + 1)))
        return min(least)

    def required_cost(self, node: dict[str, Any]) -> int:
        """What an object's required properties cost at the least (entry_cost each)."""
        cost = self._required.get(id(node))
        if cost is None:
            properties = node.get("properties", {})
            cost = self._required[id(node)] = sum(self.entry_cost(k, properties[k]) for k in node.get("required", []) if k in properties)
        return cost


def _has_choices(node: dict[str, Any]) -> bool:
    """Whether a container's grammar leaves anything to choose (optional keys, extra keys, a
    number of items): only then does it need a plan; otherwise the grammar forces it all."""
    if "properties" in node:
        return bool(set(node["properties"]) - set(node.get("required", []))) or bool(
            node.get("additionalProperties") or node.get("patternProperties")
        )
    return node.get("minItems", 0) != node.get("maxItems")


def _is(node: dict[str, Any], kind: str) -> bool:
    return node is FREE or kind in node_types(node) or "enum" in node and any(_json_kind(v) == kind for v in node["enum"])


def _json_kind(value: Any) -> str:
    return "object" if isinstance(value, dict) else "array" if isinstance(value, list) else "string" if isinstance(value, str) else "other"


@dataclass(slots=True)
class Frame:
    """An open object or array."""

    kind: str
    nodes: tuple[dict[str, Any], ...]
    node: dict[str, Any] | None  # the one node it is, when the cursor knows it (then it is planned)
    plan: list[str | None] | None = None  # object: the keys it writes, in order (EXTRA: a key the model names)
    target: int | None = None  # array: how many items it holds
    pos: int = 0  # object: planned entries started; array: items started
    key: str | None = None
    keys: int = 0  # keys written
    rest: int = 1  # fewest bytes still needed after the current entry, the closer included
    costs: list[int] = field(default_factory=list)  # planned entries' fewest bytes


class RowCursor:
    """Where one row's JSON text stands: the open containers, the open string if any, and the plan.
    `tokens` is kept by the decode loop: the row's tokens so far, the ones being fed included."""

    def __init__(self, bounds: StringBounds, index: SchemaIndex, budget: int, seed: int | None = None, optional_rate: float = 0.5,
                 sampled: dict[str, str | None] | None = None, written: frozenset[str] = frozenset()):
        self.bounds = bounds
        self.written = written  # top-level fields the row must write (given values), optional or not
        # Top-level fields' values, as JSON text, forced once their key is written (None: no value fits).
        self.sampled = {name: None if text is None else text.encode() for name, text in (sampled or {}).items()}
        self.value: bytes | None = None  # the sampled value being forced
        self.value_pos = 0
        self.value_ended = False  # a sampled number was forced: the next byte must end it
        self.sample_failed = False  # a sampled value that could not be written: the row fails
        self.index = index
        self.budget = budget  # tokens the row may take
        self.seed = seed  # of the row's plans; None: no plans, the model chooses what the grammar leaves open
        self._rng: random.Random | None = None
        self.optional_rate = optional_rate
        self.tokens = 0
        self.stack: list[Frame] = []
        self.expect: tuple[dict[str, Any], ...] | None = index.concrete(index.schema)
        self.at_value = True  # the next non-space byte starts a value
        self.in_string = False
        self.is_key = False
        self.key = bytearray()
        self.escape = False
        self.left: int | None = None  # characters the open string may still take (maxLength)
        self.string_min = 0  # characters the open string must still take (minLength)
        self.free = False  # the open string is plain: any character or the closing quote may follow
        self.scalar = False  # inside a number, true, false or null
        self.choice: tuple[Frame, bytes, bool] | None = None  # a planned choice: its text, and whether content follows
        self.matched = 0
        self.plans_dropped = 0
        self.planned = 0  # open containers with a plan: none, and there is nothing to mask

    # -- what the decode loop asks --------------------------------------------------------------

    def limit(self) -> int | None:
        """Characters the open string value may still take, or None where no limit applies: its
        maxLength, and, once the row's budget has no room past the fewest tokens the rest of the
        row needs, its minimum (one more while one token of room is left, so that it never ends
        on a space it could not close after)."""
        if not self.in_string or self.is_key or self.escape:
            return None
        room = self._room()
        if room > 1:
            return self.left
        if not self.free:  # a pattern or format: the grammar knows when it can end
            return CLOSE_IF_ABLE
        cap = self.string_min + max(room, 0)
        return cap if self.left is None else min(self.left, cap)

    def in_free_string(self) -> bool:
        """Inside a plain string value, where the grammar forces nothing and the row cannot be
        complete. The engine skips its jump-forward and completion checks here."""
        return self.in_string and self.free and not self.escape and self.choice is None

    def plan_text(self) -> str:
        """What the plan forces now: the rest of an active choice's text, or of a sampled value."""
        if self.choice is not None and self.matched < len(self.choice[1]):
            return self.choice[1][self.matched:].decode()
        if self.value is not None:
            return self.value[self.value_pos:].decode()
        return ""

    def forcing_value(self) -> bool:
        """Whether plan_text() is a sampled value's (which the grammar must take: no model fallback)."""
        return self.value is not None and (self.choice is None or self.matched >= len(self.choice[1]))

    def plan_situation(self) -> tuple | None:
        """What the mask must know for the next sampled token when a plan lies ahead of it:
        (situation, containers between, the plan's text, whether content follows it); after a
        sampled number, (ENDED, that or None)."""
        if self.value_ended:
            return (ENDED, self._plan_situation())
        return self._plan_situation()

    def _plan_situation(self) -> tuple[str, int, bytes, bool] | None:
        if self.choice is not None:
            _, text, open_ = self.choice
            return (AFTER, 0, text[self.matched:], open_)
        if not self.planned:
            return None
        if self.in_string:
            if self.is_key:
                return None
            situation = IN_STRING
        elif self.scalar:
            situation = IN_SCALAR
        elif self.at_value:
            situation = AT_START
        else:
            situation = AFTER
        for levels, frame in enumerate(reversed(self.stack)):
            if levels > MAX_LEVELS:
                return None
            if frame.node is not None:
                if situation == AFTER and levels == 0:
                    return None
                text, open_ = self._choice_text(frame)
                return (situation, levels, text, open_)
        return None

    def abandon(self) -> None:
        """The grammar refused the plan's text: the model chooses for that container."""
        if self.choice is not None:
            self._drop(self.choice[0])

    # -- feeding ----------------------------------------------------------------------------------

    def feed_token(self, token: int) -> None:
        bounds = self.bounds
        if self.in_string and not self.is_key and not self.escape and self.choice is None and bounds.inside_plain[token]:
            chars = bounds.chars[token]
            if self.left is not None:
                self.left -= chars
            self.string_min = max(0, self.string_min - chars)
            return
        if not self.in_string and not self.scalar and not self.at_value and self.choice is None and bounds.outside_plain[token]:
            return
        self.feed_bytes(bounds.decoded[token])

    def feed_bytes(self, data: bytes) -> None:
        for byte in data:
            if self.value is not None:
                self._value_byte(byte)
            if self.scalar and byte in SCALAR_END:
                self.value_ended = False
                self.scalar = False
                self._value_done()
            if self.choice is not None:
                self._choice_byte(byte)
            if self.in_string:
                self._string_byte(byte)
            elif not self.scalar:
                self._structure_byte(byte)

    def _value_byte(self, byte: int) -> None:
        """Follows a sampled value's text (after its key's colon) byte by byte."""
        if self.value_pos == 0 and (byte in WHITESPACE or byte == ord(":")):
            return
        if self.value_pos < len(self.value) and byte == self.value[self.value_pos]:
            self.value_pos += 1
            if self.value_pos == len(self.value):
                self.value_ended = self.value[:1] not in (b'"', b"{", b"[")
                self.value = None
            return
        self.value, self.sample_failed = None, True  # something other than the value was written

    def _choice_byte(self, byte: int) -> None:
        frame, text, open_ = self.choice
        if self.matched < len(text):
            if byte != text[self.matched]:
                self._drop(frame)
                return
            self.matched += 1
            if self.matched == len(text) and not open_:
                self._entry_started(frame)
        elif byte in CLOSERS:  # content was planned here
            self._drop(frame)
        elif byte not in WHITESPACE:
            self._entry_started(frame)

    def _string_byte(self, byte: int) -> None:
        if self.escape:
            self.escape = False
        elif byte == BACKSLASH:
            self.escape = True
        elif byte == QUOTE:
            self.in_string = False
            if self.is_key:
                self._key_done(json.loads(b'"' + bytes(self.key) + b'"'))
            else:
                self._value_done()
            return
        if self.is_key:
            self.key.append(byte)
        elif byte & 0xC0 != 0x80:
            if self.left is not None:
                self.left -= 1
            self.string_min = max(0, self.string_min - 1)

    def _structure_byte(self, byte: int) -> None:
        if byte in WHITESPACE:
            return
        top = self.stack[-1] if self.stack else None
        if byte == ord(":"):
            self.at_value = True
            return
        if byte == ord(","):
            self.at_value = top is not None and top.kind == "array"
            return
        if byte in CLOSERS:
            if self.stack.pop().node is not None:
                self.planned -= 1
            self._value_done()
            return
        if not self.at_value:  # a key opens
            if byte == QUOTE:
                self.in_string, self.is_key = True, True
                self.key.clear()
            return
        if top is not None and top.kind == "array":
            top.pos += 1
            self.expect = self._item_nodes(top, top.pos - 1)
        self.at_value = False
        if byte == QUOTE:
            self.in_string, self.is_key = True, False
            self._string_opens()
        elif byte == ord("{"):
            self._open("object")
        elif byte == ord("["):
            self._open("array")
        else:
            self.scalar = True

    # -- values -----------------------------------------------------------------------------------

    def _string_opens(self) -> None:
        nodes = [n for n in (self.expect or (FREE,)) if _is(n, "string")]
        plain = [n for n in nodes if n is FREE or not any(k in n for k in ("enum", "format", "pattern"))]
        self.free = bool(nodes) and len(plain) == len(nodes)
        if self.free:
            self.left = max(FREE_STRING_CHARS if n is FREE else n.get("maxLength", FREE_STRING_CHARS) for n in plain)
            self.string_min = min(0 if n is FREE else n.get("minLength", 1) for n in plain)
        elif nodes and all("maxLength" in n and "enum" not in n for n in nodes):
            self.left, self.string_min = max(n["maxLength"] for n in nodes), 0  # a pattern's maxLength
        else:
            self.left, self.string_min = None, 0

    @property
    def rng(self) -> random.Random:
        if self._rng is None:  # made on first use: most rows of most schemas have nothing to plan
            self._rng = random.Random(self.seed)
        return self._rng

    def _open(self, kind: str) -> None:
        nodes = tuple(n for n in (self.expect or (FREE,)) if _is(n, kind))
        known = len(nodes) == 1 and nodes[0] is not FREE and "enum" not in nodes[0]
        frame = Frame(kind, nodes, nodes[0] if known and self.seed is not None and _has_choices(nodes[0]) else None)
        self.stack.append(frame)
        self.at_value = kind == "array"
        if frame.node is None:
            frame.rest = 1 + self._unplanned_rest(frame)
            return
        self.planned += 1
        if kind == "object":
            self._plan_object(frame)
        else:
            self._plan_array(frame)
        self._open_choice(frame)

    def _item_nodes(self, frame: Frame, index: int) -> tuple[dict[str, Any], ...]:
        found: list[dict[str, Any]] = []
        for node in frame.nodes:
            if node is FREE or "enum" in node:
                found.append(FREE)
                continue
            prefix = node.get("prefixItems", [])
            item = prefix[index] if index < len(prefix) else node.get("items")
            if item is not None:
                found += self.index.concrete(item)
        return tuple(found) or (FREE,)

    def _key_done(self, name: str) -> None:
        top = self.stack[-1]
        top.key = name
        if len(self.stack) == 1 and name in self.sampled:
            self.value, self.value_pos = self.sampled[name], 0
            self.sample_failed = self.value is None
        found: list[dict[str, Any]] = []
        for node in top.nodes:
            if node is FREE or "enum" in node:
                found.append(FREE)
                continue
            sub = node.get("properties", {}).get(name)
            if sub is None:
                sub = node.get("additionalProperties") or next(iter(node.get("patternProperties", {}).values()), None)
            if isinstance(sub, dict):
                found += self.index.concrete(sub)
        self.expect = tuple(found) or (FREE,)
        if top.node is None and top.nodes and top.nodes[0] is not FREE and "enum" not in top.nodes[0]:
            node = top.nodes[0]
            if name in node.get("required", []) and name in node.get("properties", {}):
                top.rest -= self.index.entry_cost(name, node["properties"][name])

    def _value_done(self) -> None:
        """A value ended: the container it is in makes its next choice."""
        self.at_value = False
        if not self.stack:
            return
        top = self.stack[-1]
        if top.kind == "object":
            top.key = None
        if top.node is not None:
            self._open_choice(top)

    # -- plans ------------------------------------------------------------------------------------

    def _choice_text(self, frame: Frame) -> tuple[bytes, bool]:
        """The text of a planned container's next choice, and whether content follows it."""
        lead = b", " if frame.pos else b""
        if frame.kind == "array":
            return (lead, True) if frame.pos < frame.target else (b"]", False)
        if frame.pos >= len(frame.plan):
            return b"}", False
        name = frame.plan[frame.pos]
        if name is EXTRA:
            return lead + b'"', True
        return lead + (json_text(name) + ": ").encode(), True

    def _open_choice(self, frame: Frame) -> None:
        text, open_ = self._choice_text(frame)
        self.choice = (frame, text, open_)
        self.matched = 0

    def _entry_started(self, frame: Frame) -> None:
        self.choice = None
        if frame.pos < len(frame.costs):
            frame.rest -= frame.costs[frame.pos]
        if frame.kind == "object" and frame.pos < len(frame.plan):
            frame.pos += 1  # an array counts its items as they start (_structure_byte)

    def _drop(self, frame: Frame) -> None:
        if frame.node is not None:
            self.planned -= 1
        frame.node = None
        frame.plan = None
        frame.target = None
        self.choice = None
        self.plans_dropped += 1

    def _room(self) -> int:
        """Bytes the row can still spend past the fewest the rest of it needs."""
        return self.budget - self.tokens - self._reserve() - SLACK

    def _reserve(self) -> int:
        """The fewest bytes the rest of the row needs: each open container's remaining entries
        and closer, and the open string's minimum and closing quote."""
        total = sum(frame.rest for frame in self.stack)
        if self.in_string and not self.is_key:
            total += self.string_min + 1
        return total

    def _unplanned_rest(self, frame: Frame) -> int:
        node = frame.nodes[0] if frame.nodes else FREE
        if node is FREE or "enum" in node:
            return 0
        if frame.kind == "object":
            return self.index.required_cost(node)
        return max(0, self.index.sizes.reserve_bytes(node) - 2)

    def _plan_object(self, frame: Frame) -> None:
        node = frame.node
        properties = node["properties"]
        required = [name for name in properties if name in set(node.get("required", []))]
        dependents = node.get("dependentRequired", {})
        high = node.get("maxProperties", 1 << 30)
        low = node.get("minProperties", 0)
        costs = {name: self.index.entry_cost(name, sub) for name, sub in properties.items()}
        keep = set(required)
        room = self._room() - sum(costs[n] for n in required)

        def take(name: str, force: bool = False) -> None:
            nonlocal room
            wanted = {name, *dependents.get(name, [])} - keep
            cost = sum(costs[n] for n in wanted)
            if force or len(keep) + len(wanted) <= high and cost <= room:
                keep.update(wanted)
                room -= cost

        if len(self.stack) == 1:
            for name in properties:
                if name in self.written:
                    take(name, force=True)
        optional = [name for name in properties if name not in keep]
        for name in optional:
            if self.rng.random() >= self.optional_rate:
                take(name)
        for name in optional:  # minProperties: more listed keys before extra ones
            if len(keep) >= low:
                break
            take(name, force=True)
        extras, extra_cost = 0, 0
        extra_node = node.get("additionalProperties") or next(iter(node.get("patternProperties", {}).values()), None)
        if isinstance(extra_node, dict):
            extra_cost = 2 + 8 + 2 + self.index.sizes.reserve_bytes(extra_node)
            fewest = max(0, low - len(keep))
            most = max(fewest, min(FREE_ITEMS, high - len(keep)))
            extras = self.rng.randint(fewest, most)
            while extras > fewest and extras * extra_cost > room:
                extras -= 1
        frame.plan = [name for name in properties if name in keep] + [EXTRA] * extras
        frame.costs = [costs[name] if name is not EXTRA else extra_cost for name in frame.plan]
        frame.rest = 1 + sum(frame.costs)

    def _plan_array(self, frame: Frame) -> None:
        node = frame.node
        low, high = node.get("minItems", 0), node["maxItems"]
        prefix = node.get("prefixItems", [])
        item = node.get("items")

        def cost(i: int) -> int:
            return 2 + self.index.sizes.reserve_bytes(prefix[i] if i < len(prefix) else item)

        room = self._room() - sum(cost(i) for i in range(low))
        count = self.rng.randint(low, high)
        while count > low and sum(cost(i) for i in range(low, count)) > room:
            count -= 1
        frame.target = count
        frame.costs = [cost(i) for i in range(count)]
        frame.rest = 1 + sum(frame.costs)
