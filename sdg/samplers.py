"""Sampled fields: the `x-sdg` keyword on a top-level field names one sampler, and each row's
value for that field is drawn from it (not written by the model).

read_samplers() checks every sampler against its field's normalized schema at the door, so a
sampler that cannot yield a valid value is a SchemaError naming the field and the keyword's
JSON pointer. FieldSamplers.draw() gives one row's values as the JSON text the row grammar
writes; the engine forces that text into the row (text_service.cursor). Values depend on the
job seed, the row's slot and the field name only, so the same seed gives the same values.
Sampler.requested() is the distribution a sampler asks for, which sdg.quality tests rows against.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import json
import math
import random
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from statistics import NormalDist
from typing import Any, Callable

import jsonschema

from sdg.design import DESIGN_KEYS, OrderRule
from sdg.jsonrefs import escape
from sdg.schema import FRACTION_DIGITS, INT_DIGITS, MAX_ABS_NUMBER, SchemaError

KEYWORD = "x-sdg"
# Each sampler's keys: required ones, then optional ones.
SAMPLER_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "category": (("values",), ("weights",)),
    "uniform": ((), ("min", "max")),
    "gaussian": (("mean", "stddev"), ()),
    "poisson": (("mean",), ()),
    "datetime": (("start", "end"), ()),
    "sequence": ((), ("start", "step")),
    "uuid": ((), ()),
    "faker": (("provider",), ("locale", "locale_from", "locales")),
}
# Dates the grammar writes: years 1900-2099, February up to the 28th.
FIRST_DATE, LAST_DATE = dt.date(1900, 1, 1), dt.date(2099, 12, 31)
# Draws a value may take to satisfy its field (a Faker value too long, say) before the row fails.
REDRAWS = 32
# Draws checked at the door for samplers whose values are not known ahead (Faker).
DOOR_DRAWS = 16
POISSON_MAX_MEAN = 1e6


@dataclass(frozen=True)
class Requested:
    """The distribution a sampler asks for, for checking rows against it (sdg.quality).
    `kind`: "categorical" (`values` with `probabilities`), "discrete" (whole steps on an axis:
    integers, days, seconds) or "continuous"; for the last two `cdf(x)` is P(X <= x) on the axis,
    which runs from `low` to `high`, and `axis` maps a row's value onto it."""

    kind: str
    values: tuple[Any, ...] = ()
    probabilities: tuple[float, ...] = ()
    cdf: Callable[[float], float] | None = None
    low: float = 0.0
    high: float = 0.0
    axis: Callable[[Any], float] = float
    label: Callable[[float], str] | None = None  # a point of the axis as a value, where it is not one


class SamplerError(ValueError):
    """A sampler that cannot be honoured; `key` is the offending key under x-sdg, if one is."""

    def __init__(self, reason: str, key: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.key = key


def _number(value: Any, what: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SamplerError(f"{what} must be a finite number, got {value!r}", key)
    return value


def _integer(value: Any, what: str, key: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SamplerError(f"{what} must be an integer, got {value!r}", key)
    return value


@dataclass(frozen=True)
class FieldShape:
    """What a sampled field's normalized schema allows, as the samplers need it."""

    name: str
    node: dict[str, Any]
    kind: str  # string, integer, number or boolean
    low: float | None  # the writable bounds of a number or integer (inclusive)
    high: float | None
    validator: jsonschema.protocols.Validator
    string_char: Callable[[str], bool]  # whether a string without enum can be written

    def text(self, value: Any) -> str:
        """The JSON text the grammar writes for `value`."""
        if self.kind == "number" and "enum" not in self.node:
            rounded = round(float(value), FRACTION_DIGITS) + 0.0  # + 0.0: no "-0.0"
            text = f"{rounded:.{FRACTION_DIGITS}f}".rstrip("0")
            return text + "0" if text.endswith(".") else text
        return json.dumps(value, ensure_ascii=False)

    def why_not(self, value: Any) -> str | None:
        """Why rows cannot hold `value` for this field, or None when they can."""
        if not self.validator.is_valid(value):
            error = jsonschema.exceptions.best_match(self.validator.iter_errors(value))
            return f"{value!r} does not satisfy the field's schema: {error.message}"
        if "enum" in self.node:
            return None
        if self.kind == "string" and not self.string_char(value):
            return f"{value!r} cannot be written: rows' strings have no quotes, backslashes or control characters, and no space at either end"
        if self.kind in ("integer", "number"):
            if self.kind == "number" and round(value, FRACTION_DIGITS) != value:
                return f"{value!r} has more than {FRACTION_DIGITS} decimals, which rows do not write"
            if self.low is not None and value < self.low or self.high is not None and value > self.high:
                return f"{value!r} is outside the range rows write, {self.low:g} to {self.high:g}"
        return None


def field_shape(name: str, node: dict[str, Any], defs: dict[str, Any], string_char: Callable[[str], bool]) -> FieldShape:
    """The shape of a field's resolved, normalized node. Raises SamplerError for a node that is a
    union: a sampler writes one type."""
    if "anyOf" in node:
        raise SamplerError("a sampled field must have one type, not a union")
    types = node.get("type")
    types = [t for t in (types if isinstance(types, list) else [types]) if t != "null"]
    kind = types[0] if len(types) == 1 else None
    if kind not in ("string", "integer", "number", "boolean"):
        raise SamplerError(f"a sampled field must be a string, integer, number or boolean, not {kind or 'of any type'}")
    if kind in ("integer", "number") and "multipleOf" in node:
        raise SamplerError("fields with multipleOf cannot be sampled")
    low, high = None, None
    if kind == "integer":
        low, high = node.get("minimum"), node.get("maximum")
        if low is None and high is None:  # the grammar's unbounded integers
            low, high = -(10**INT_DIGITS - 1), 10**INT_DIGITS - 1
        low, high = (-MAX_ABS_NUMBER if low is None else low), (MAX_ABS_NUMBER if high is None else high)
    elif kind == "number":
        # The grammar writes whole units strictly inside the bounds, each with any decimals.
        step = 10**-FRACTION_DIGITS
        lo = node.get("minimum", node.get("exclusiveMinimum"))
        hi = node.get("maximum", node.get("exclusiveMaximum"))
        cap = 10**INT_DIGITS - 1
        low = round(max(math.ceil(lo), -cap) + step, FRACTION_DIGITS) if lo is not None else -cap + step
        high = round(min(math.floor(hi), cap) - step, FRACTION_DIGITS) if hi is not None else cap - step
        if lo is not None and lo >= 0 and math.ceil(lo) == lo:
            low = float(math.ceil(lo))  # non-negative: the unit itself is written ("5.0")
        if low > high:
            raise SamplerError(f"no number with {FRACTION_DIGITS} decimals lies within the field's bounds")
    schema = {**node, "$defs": defs} if defs else node
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    return FieldShape(name, node, kind, low, high, validator, string_char)


class Sampler:
    """One field's sampler. `draw` gives a value from `rng`; `row` holds the row's values drawn
    so far (a Faker locale may come from one); `slot` is the row's slot in the call."""

    needs: tuple[str, ...] = ()  # fields drawn before this one

    def __init__(self, shape: FieldShape, spec: dict[str, Any]):
        self.shape = shape

    def draw(self, rng: random.Random, slot: int, row: dict[str, Any]) -> Any:
        raise NotImplementedError

    def span(self) -> tuple[Any, Any] | None:
        """The least and greatest value it draws, where known ahead."""
        return None

    @property
    def name(self) -> str:
        """Its key under x-sdg."""
        return "faker" if isinstance(self, FakerSampler) else next(k for k, v in SAMPLER_TYPES.items() if isinstance(self, v))

    def requested(self) -> Requested | None:
        """The distribution its values follow; None for samplers with none to test (sequence, uuid, faker)."""
        return None

    def _kinds(self, *kinds: str) -> None:
        if self.shape.kind not in kinds:
            raise SamplerError(f"{type(self).__name__.lower()} samples {' or '.join(kinds)} fields, and this one is {self.shape.kind}")


class Category(Sampler):
    def __init__(self, shape: FieldShape, spec: dict[str, Any]):
        super().__init__(shape, spec)
        values = spec["values"]
        if not isinstance(values, list) or not values:
            raise SamplerError("values must be a non-empty list", "values")
        for value in values:
            why = shape.why_not(value)
            if why:
                raise SamplerError(f"value {why}", "values")
        weights = spec.get("weights")
        if weights is None:
            weights = [1] * len(values)
        if not isinstance(weights, list) or len(weights) != len(values):
            raise SamplerError(f"weights must be a list of {len(values)} numbers, one per value", "weights")
        for w in weights:
            if _number(w, "each weight", "weights") < 0:
                raise SamplerError(f"weights must not be negative, got {w!r}", "weights")
        total = sum(weights)
        if not total > 0:
            raise SamplerError(f"weights must sum to a positive number, got {total!r}", "weights")
        self.values = values
        self.probabilities = [w / total for w in weights]
        self.cumulative = [sum(weights[: i + 1]) / total for i in range(len(weights))]

    def draw(self, rng: random.Random, slot: int, row: dict[str, Any]) -> Any:
        return self.values[min(bisect.bisect_right(self.cumulative, rng.random()), len(self.values) - 1)]

    def requested(self) -> Requested:
        return Requested("categorical", tuple(self.values), tuple(self.probabilities))

    def span(self) -> tuple[Any, Any] | None:
        drawn = [v for v, p in zip(self.values, self.probabilities) if p > 0]
        try:
            return min(drawn), max(drawn)
        except TypeError:
            return None


class _Numeric(Sampler):
    """Bounds checks and integer rounding shared by uniform, gaussian and poisson."""

    low: float
    high: float

    def span(self) -> tuple[Any, Any] | None:
        return self.low, self.high

    def _range(self, low: float | None, high: float | None) -> tuple[float, float]:
        shape = self.shape
        lo = shape.low if low is None else low
        hi = shape.high if high is None else high
        if shape.low is not None and lo < shape.low or shape.high is not None and hi > shape.high:
            raise SamplerError(f"the range {lo:g} to {hi:g} reaches past what the field allows, {shape.low:g} to {shape.high:g}")
        if lo > hi:
            raise SamplerError(f"the range is empty: {lo:g} is greater than {hi:g}")
        if shape.kind == "integer" and math.ceil(lo) > math.floor(hi):
            raise SamplerError(f"no integer lies between {lo:g} and {hi:g}")
        return lo, hi

    def _value(self, x: float) -> int | float:
        if self.shape.kind == "integer":
            return int(round(x))
        return round(x, FRACTION_DIGITS) + 0.0


class Uniform(_Numeric):
    def __init__(self, shape: FieldShape, spec: dict[str, Any]):
        super().__init__(shape, spec)
        self._kinds("integer", "number")
        low = _number(spec["min"], "min", "min") if "min" in spec else None
        high = _number(spec["max"], "max", "max") if "max" in spec else None
        self.low, self.high = self._range(low, high)

    def draw(self, rng: random.Random, slot: int, row: dict[str, Any]) -> Any:
        if self.shape.kind == "integer":
            return rng.randint(math.ceil(self.low), math.floor(self.high))
        return min(max(self._value(rng.uniform(self.low, self.high)), self.low), self.high)

    def requested(self) -> Requested:
        if self.shape.kind == "integer":
            low, high = math.ceil(self.low), math.floor(self.high)
            return Requested("discrete", cdf=lambda k: min(max((math.floor(k) - low + 1) / (high - low + 1), 0.0), 1.0), low=low, high=high)
        width = self.high - self.low
        return Requested("continuous", cdf=lambda x: min(max((x - self.low) / width, 0.0), 1.0) if width else float(x >= self.low),
                         low=self.low, high=self.high)


class Gaussian(_Numeric):
    """A normal distribution truncated to the field's bounds; an integer field's value k stands
    for the mass between k - 0.5 and k + 0.5."""

    def __init__(self, shape: FieldShape, spec: dict[str, Any]):
        super().__init__(shape, spec)
        self._kinds("integer", "number")
        mean = _number(spec["mean"], "mean", "mean")
        stddev = _number(spec["stddev"], "stddev", "stddev")
        if not stddev > 0:
            raise SamplerError(f"stddev must be positive, got {stddev!r}", "stddev")
        self.low, self.high = self._range(None, None)
        self.normal = NormalDist(mean, stddev)
        half = 0.5 if shape.kind == "integer" else 0.0
        self.cdf_low = self.normal.cdf(math.ceil(self.low) - half if half else self.low)
        self.cdf_high = self.normal.cdf(math.floor(self.high) + half if half else self.high)
        if not self.cdf_high - self.cdf_low > 1e-12:
            raise SamplerError(f"clipped to the field's bounds ({self.low:g} to {self.high:g}), a gaussian of mean {mean:g} and stddev {stddev:g} has no mass left")

    def draw(self, rng: random.Random, slot: int, row: dict[str, Any]) -> Any:
        u = self.cdf_low + rng.random() * (self.cdf_high - self.cdf_low)
        x = self.normal.inv_cdf(min(max(u, 1e-300), 1 - 1e-16))
        return min(max(self._value(x), self._value(math.ceil(self.low) if self.shape.kind == "integer" else self.low)), self.high)

    def requested(self) -> Requested:
        mass = self.cdf_high - self.cdf_low
        if self.shape.kind == "integer":
            low, high = math.ceil(self.low), math.floor(self.high)
            return Requested("discrete", low=low, high=high,
                             cdf=lambda k: min(max((self.normal.cdf(math.floor(k) + 0.5) - self.cdf_low) / mass, 0.0), 1.0))
        return Requested("continuous", low=self.low, high=self.high,
                         cdf=lambda x: min(max((self.normal.cdf(x) - self.cdf_low) / mass, 0.0), 1.0))


class Poisson(_Numeric):
    """A Poisson distribution truncated to the field's bounds, drawn by inverse transform over
    a table of its cumulative mass."""

    def __init__(self, shape: FieldShape, spec: dict[str, Any]):
        super().__init__(shape, spec)
        self._kinds("integer", "number")
        mean = _number(spec["mean"], "mean", "mean")
        if not 0 < mean <= POISSON_MAX_MEAN:
            raise SamplerError(f"mean must be positive and at most {POISSON_MAX_MEAN:g}, got {mean!r}", "mean")
        low, high = self._range(None, None)
        spread = 40 * math.sqrt(mean) + 40  # the mass past this is below double precision
        first = max(0, math.ceil(low), math.floor(mean - spread))
        last = min(math.floor(high), math.ceil(mean + spread))
        if first > last:
            raise SamplerError(f"clipped to the field's bounds ({low:g} to {high:g}), a poisson of mean {mean:g} has no mass left")
        log_pmf = [k * math.log(mean) - mean - math.lgamma(k + 1) for k in range(first, last + 1)]
        peak = max(log_pmf)
        mass = [math.exp(p - peak) for p in log_pmf]
        total = sum(mass)
        if not math.exp(peak) * total > 1e-12:
            raise SamplerError(f"clipped to the field's bounds ({low:g} to {high:g}), a poisson of mean {mean:g} has no mass left")
        running, self.cumulative = 0.0, []
        for m in mass:
            running += m / total
            self.cumulative.append(running)
        self.first = first
        self.low, self.high = first, first + len(self.cumulative) - 1

    def draw(self, rng: random.Random, slot: int, row: dict[str, Any]) -> Any:
        k = self.first + min(bisect.bisect_right(self.cumulative, rng.random()), len(self.cumulative) - 1)
        return k if self.shape.kind == "integer" else float(k)

    def requested(self) -> Requested:
        def cdf(k: float) -> float:
            i = math.floor(k) - self.first
            return 0.0 if i < 0 else self.cumulative[min(i, len(self.cumulative) - 1)]

        return Requested("discrete", cdf=cdf, low=self.low, high=self.high)


class Datetime(Sampler):
    """Uniform over the days of a `date` field's range, or the seconds of a `date-time` one's
    (written in UTC, as `YYYY-MM-DDTHH:MM:SSZ`). February 29th is left out: rows never hold it."""

    def __init__(self, shape: FieldShape, spec: dict[str, Any]):
        super().__init__(shape, spec)
        self._kinds("string")
        self.format = shape.node.get("format")
        if self.format not in ("date", "date-time") or "enum" in shape.node:
            raise SamplerError("datetime samples string fields of format date or date-time")
        self.start = self._moment(spec["start"], "start")
        self.end = self._moment(spec["end"], "end")
        if self.start > self.end:
            raise SamplerError(f"start {spec['start']!r} is after end {spec['end']!r}", "start")
        if self.start.date() < FIRST_DATE or self.end.date() > LAST_DATE:
            raise SamplerError(f"the range must lie within {FIRST_DATE} and {LAST_DATE}", "start" if self.start.date() < FIRST_DATE else "end")
        step = 86400 if self.format == "date" else 1
        self.span_steps = int((self.end - self.start).total_seconds()) // step
        self.step = step
        if all(self._at(i) is None for i in {0, self.span_steps}) and self.span_steps < 2:
            raise SamplerError("the range holds February 29th only, which rows never hold")

    @staticmethod
    def _moment(value: Any, key: str) -> dt.datetime:
        if not isinstance(value, str):
            raise SamplerError(f"{key} must be an ISO 8601 date or date-time string, got {value!r}", key)
        try:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise SamplerError(f"{key} {value!r} is not an ISO 8601 date or date-time", key) from None
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return moment

    def _at(self, i: int) -> str | None:
        moment = self.start + dt.timedelta(seconds=i * self.step)
        if moment.month == 2 and moment.day == 29:
            return None
        return moment.date().isoformat() if self.format == "date" else moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    def span(self) -> tuple[Any, Any] | None:
        return self._at(0) or self._at(1), self._at(self.span_steps) or self._at(self.span_steps - 1)

    def requested(self) -> Requested:
        """Uniform over the steps (days or seconds) from start, February 29th's left out; dates
        are discrete, and seconds many enough to be continuous."""
        per_day = 86400 // self.step
        leap_days = [math.ceil((dt.datetime(y, 2, 29) - self.start).total_seconds() / self.step)
                     for y in range(self.start.year, self.end.year + 1) if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)]

        def kept(i: float) -> float:
            """Steps 0..i not on a February 29th."""
            last = min(math.floor(i), self.span_steps)
            if last < 0:
                return 0.0
            return last + 1 - sum(max(0, min(last, first + per_day - 1) - max(0, first) + 1) for first in leap_days)

        total = kept(self.span_steps)
        kind = "discrete" if self.format == "date" else "continuous"
        return Requested(kind, cdf=lambda i: kept(i) / total, low=0, high=self.span_steps,
                         axis=lambda value: (self._moment(value, "value") - self.start).total_seconds() / self.step,
                         label=lambda i: self._at(int(i)) or (self.start + dt.timedelta(seconds=i * self.step)).isoformat())

    def draw(self, rng: random.Random, slot: int, row: dict[str, Any]) -> Any:
        for _ in range(REDRAWS):
            value = self._at(rng.randint(0, self.span_steps))
            if value is not None:
                return value
        return None


class Sequence(Sampler):
    """start + step * slot: unique within a call (a regenerated row skips its slot's value)."""

    def __init__(self, shape: FieldShape, spec: dict[str, Any]):
        super().__init__(shape, spec)
        self._kinds("integer", "number")
        self.start = _integer(spec.get("start", 1), "start", "start")
        self.step = _integer(spec.get("step", 1), "step", "step")
        if self.step == 0:
            raise SamplerError("step must not be 0: the values would repeat", "step")
        why = shape.why_not(self.start if shape.kind == "integer" else float(self.start))
        if why:
            raise SamplerError(f"start {why}", "start")

    def draw(self, rng: random.Random, slot: int, row: dict[str, Any]) -> Any:
        value = self.start + self.step * slot
        return value if self.shape.kind == "integer" else float(value)


class Uuid(Sampler):
    def __init__(self, shape: FieldShape, spec: dict[str, Any]):
        super().__init__(shape, spec)
        self._kinds("string")
        why = shape.why_not(str(uuid.UUID(int=0, version=4)))
        if why:
            raise SamplerError(f"a UUID such as {why}")

    def draw(self, rng: random.Random, slot: int, row: dict[str, Any]) -> Any:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# Faker methods that are not value providers.
NOT_PROVIDERS = {"seed", "seed_instance", "seed_locale", "add_provider", "get_providers", "provider", "format", "parse",
                 "set_arguments", "get_arguments", "del_arguments", "set_formatter", "get_formatter", "random", "unique",
                 "optional", "items", "weights", "factories", "locales", "enum", "xml", "json", "csv", "tsv", "psv",
                 "dsv", "zip", "tar", "image", "binary", "pydict", "pylist", "pyset", "pytuple", "pyiterable", "pystruct",
                 "pyobject", "profile", "simple_profile", "fixed_width", "json_bytes"}


@lru_cache(maxsize=64)
def _faker(locale: str):
    from faker import Faker

    return Faker(locale)


def _locales() -> frozenset[str]:
    from faker.config import AVAILABLE_LOCALES

    return frozenset(AVAILABLE_LOCALES)


class FakerSampler(Sampler):
    """A Faker provider's value, in one locale or in the locale another sampled field names."""

    def __init__(self, shape: FieldShape, spec: dict[str, Any], fields: dict[str, dict[str, Any]]):
        super().__init__(shape, spec)
        self._kinds("string")
        provider = spec["provider"]
        if not isinstance(provider, str) or provider.startswith("_") or provider in NOT_PROVIDERS:
            raise SamplerError(f"provider must be the name of a Faker provider such as name, address, company or phone_number, got {provider!r}", "provider")
        if "locale" in spec and "locale_from" in spec:
            raise SamplerError("give locale or locale_from, not both", "locale_from")
        if "locales" in spec and "locale_from" not in spec:
            raise SamplerError("locales maps another field's values to locales: it needs locale_from", "locales")
        self.provider = provider
        self.locale = spec.get("locale", "en_US")
        self.locale_from = spec.get("locale_from")
        self.locales: dict[str, str] = {}
        known = _locales()
        if self.locale_from is not None:
            source = fields.get(self.locale_from) if isinstance(self.locale_from, str) else None
            if source is None or "category" not in source:
                raise SamplerError(f"locale_from must name another field sampled with category, got {self.locale_from!r}", "locale_from")
            mapping = spec.get("locales", {})
            if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
                raise SamplerError("locales must map values to locale names", "locales")
            values = source["category"].get("values") if isinstance(source["category"], dict) else None
            for value in values if isinstance(values, list) else []:
                locale = mapping.get(str(value), value)
                if locale not in known:
                    raise SamplerError(f"{self.locale_from} may be {value!r}, which names no Faker locale{'' if mapping else '; map it with locales'}", "locales" if mapping else "locale_from")
                self.locales[str(value)] = locale
            self.needs = (self.locale_from,)
        elif not isinstance(self.locale, str) or self.locale not in known:
            raise SamplerError(f"locale {self.locale!r} is not a Faker locale (such as en_US, nl_NL or ja_JP)", "locale")
        for locale in set(self.locales.values()) or {self.locale}:
            method = getattr(_faker(locale), provider, None)
            if not callable(method):
                raise SamplerError(f"{provider!r} is not a Faker provider (in locale {locale})", "provider")
        # Faker's values are not known ahead: the first draws must fit the field.
        rng = random.Random(0)
        for i in range(DOOR_DRAWS):
            row = {self.locale_from: next(iter(self.locales))} if self.locale_from else {}
            value = self._fitting(rng, row)
            if value is None:
                sample = self._raw(rng, row)
                raise SamplerError(f"{provider} gives values rows cannot hold, such as {shape.why_not(sample) or repr(sample)}", "provider")

    def _raw(self, rng: random.Random, row: dict[str, Any]) -> Any:
        locale = self.locales[str(row[self.locale_from])] if self.locale_from else self.locale
        fake = _faker(locale)
        fake.seed_instance(rng.getrandbits(64))
        value = getattr(fake, self.provider)()
        if isinstance(value, str):
            value = ", ".join(line.strip() for line in value.splitlines() if line.strip())  # addresses
        return value

    def _fitting(self, rng: random.Random, row: dict[str, Any]) -> Any:
        for _ in range(REDRAWS):
            value = self._raw(rng, row)
            if isinstance(value, str) and self.shape.why_not(value) is None:
                return value
        return None

    def draw(self, rng: random.Random, slot: int, row: dict[str, Any]) -> Any:
        return self._fitting(rng, row)


SAMPLER_TYPES = {"category": Category, "uniform": Uniform, "gaussian": Gaussian, "poisson": Poisson, "datetime": Datetime,
                 "sequence": Sequence, "uuid": Uuid}


@dataclass(frozen=True)
class FieldSamplers:
    """A schema's samplers, in the order their values are drawn."""

    samplers: dict[str, Sampler] = field(default_factory=dict)
    rules: tuple[OrderRule, ...] = ()  # order rules between sampled fields: draws that break one are drawn again

    def __bool__(self) -> bool:
        return bool(self.samplers)

    def values(self, seed: int, slot: int) -> dict[str, Any]:
        """One row's sampled values; None for a field whose sampler found no value that fits
        (nor, after REDRAWS, one that keeps the order rules)."""
        ruled = {name for rule in self.rules for name in (rule.name, rule.other)}
        for attempt in range(REDRAWS if self.rules else 1):
            row: dict[str, Any] = {}
            for name, sampler in self.samplers.items():
                nonce = f":{attempt}" if attempt and name in ruled else ""
                digest = hashlib.blake2b(f"{seed}:{slot}:{name}{nonce}".encode(), digest_size=8).digest()
                row[name] = sampler.draw(random.Random(int.from_bytes(digest, "big")), slot, row)
            broken = [rule for rule in self.rules if not rule.holds(row)]
            if not broken:
                return row
        for rule in broken:
            row[rule.name] = None
        return row

    def ruled(self, rules: tuple[OrderRule, ...]) -> FieldSamplers:
        """These samplers, drawing again what breaks the rules between two sampled fields.
        Raises SchemaError when the samplers' ranges (or their first draws) never keep one."""
        rules = tuple(r for r in rules if r.name in self.samplers and r.other in self.samplers)
        if not rules:
            return self
        for rule in rules:
            mine, theirs = self.samplers[rule.name].span(), self.samplers[rule.other].span()
            if mine is None or theirs is None:
                continue
            # The most favourable pair: my greatest against their least, or my least against their greatest.
            pair = (mine[1], theirs[0]) if rule.key.startswith("greater") else (mine[0], theirs[1])
            if not OrderRule(rule.name, rule.key, rule.other, rule.dates).holds(dict(zip((rule.name, rule.other), pair))):
                raise SchemaError(rule.name, f"{rule.words()} never holds: {rule.name} is sampled from {mine[0]} to {mine[1]}, "
                                             f"{rule.other} from {theirs[0]} to {theirs[1]}", pointer_of(rule.name, rule.key))
        ruled = FieldSamplers(self.samplers, rules)
        if all(None in ruled.values(0, slot).values() for slot in range(DOOR_DRAWS)):
            rule = rules[0]
            raise SchemaError(rule.name, f"{rule.words()} held in none of {DOOR_DRAWS} rows' draws: the samplers' ranges barely overlap",
                              pointer_of(rule.name, rule.key))
        return ruled

    def texts(self, seed: int, slot: int) -> dict[str, str | None]:
        """One row's sampled values as the JSON text rows hold them in."""
        return {name: None if value is None else self.samplers[name].shape.text(value) for name, value in self.values(seed, slot).items()}

    def manifest(self) -> dict[str, str]:
        return {name: sampler.name for name, sampler in self.samplers.items()}


def sampler_specs(properties: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The sampler part of the x-sdg objects of a schema's top-level properties (the rest is
    sdg.design's); a field whose x-sdg holds design keys only has none."""
    specs = {}
    for name, prop in properties.items():
        if not isinstance(prop, dict) or KEYWORD not in prop:
            continue
        spec = prop[KEYWORD]
        if isinstance(spec, dict):
            sampler = {k: v for k, v in spec.items() if k not in DESIGN_KEYS}
            if not sampler and len(sampler) < len(spec):
                continue
            spec = sampler
        specs[name] = spec
    return specs


def read_sampler(shape: FieldShape, spec: Any, specs: dict[str, Any]) -> Sampler:
    """One field's sampler from its x-sdg value. Raises SamplerError."""
    if not isinstance(spec, dict):
        raise SamplerError(f"x-sdg must be an object naming one sampler ({', '.join(SAMPLER_KEYS)}) or {', '.join(DESIGN_KEYS)}, got {type(spec).__name__}")
    unknown = [k for k in spec if k not in SAMPLER_KEYS]
    if unknown:
        raise SamplerError(f"unknown key {unknown[0]!r}; x-sdg names one sampler of {', '.join(SAMPLER_KEYS)}, and takes {', '.join(DESIGN_KEYS)}", unknown[0])
    if len(spec) != 1:
        raise SamplerError(f"x-sdg names exactly one sampler, got {len(spec)}: {', '.join(spec) or 'none'}")
    (kind, options), = spec.items()
    if not isinstance(options, dict):
        raise SamplerError(f"{kind} takes an object of options, got {options!r}", kind)
    required, optional = SAMPLER_KEYS[kind]
    for key in options:
        if key not in required + optional:
            allowed = ", ".join(required + optional) or "none"
            raise SamplerError(f"{kind} has no option {key!r} (options: {allowed})", f"{kind}/{key}")
    for key in required:
        if key not in options:
            raise SamplerError(f"{kind} needs {key!r}", kind)
    try:
        if kind == "faker":
            return FakerSampler(shape, options, specs)
        return SAMPLER_TYPES[kind](shape, options)
    except SamplerError as err:
        if err.key and not err.key.startswith(kind):
            err.key = f"{kind}/{err.key}"
        elif not err.key:
            err.key = kind
        raise


def draw_order(samplers: dict[str, Sampler]) -> dict[str, Sampler]:
    """Samplers with what each needs first (locale_from names a category field, which needs nothing)."""
    first = {n: s for n, s in samplers.items() if not s.needs}
    return {**first, **{n: s for n, s in samplers.items() if s.needs}}


def pointer_of(name: str, key: str) -> str:
    return f"/properties/{escape(name)}/{KEYWORD}" + (f"/{key}" if key else "")
