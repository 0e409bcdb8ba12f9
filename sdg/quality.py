"""A table's quality report (a job's quality.json): each sampled field's values tested against
the distribution its sampler asks for (sdg.samplers.Requested), and per field its null rate,
distinct share and enum coverage, the model-written strings' lengths and repeats, and the share
of distinct rows. QualityTally counts rows as a job writes them, so the report at its end costs
little and rereads nothing. Plain numbers only, for the UI to plot."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import numpy as np
from scipy import stats

from sdg.samplers import Requested, Sampler
from sdg.schema import RowSchema, resolve

MIN_EXPECTED = 5  # chi-square's expected count per bin, at least
MAX_BINS = 50  # chi-square bins of an ordered distribution
PLOT_BINS = 20  # histogram bars of a number, date or string length
PLOT_CATEGORIES = 50  # category bars shown; the report still tests them all
MISSING_SHOWN = 100  # enum values listed as never seen


def _key(value: Any) -> Any:
    """A hashable stand-in for a JSON value."""
    return value if isinstance(value, (str, int, float, bool)) or value is None else json.dumps(value, sort_keys=True)


def chi_square(observed: list[float], expected: list[float], test: str) -> dict[str, Any]:
    result = stats.chisquare(observed, expected)
    return {"test": test, "statistic": float(result.statistic), "p_value": float(result.pvalue), "bins": len(observed)}


def _counted(values: list[Any]) -> Counter:
    try:
        return Counter(values)
    except TypeError:  # objects and arrays
        return Counter(_key(v) for v in values)


def _categorical(requested: Requested, counts: Counter) -> dict[str, Any]:
    """Chi-square over the values; those expected fewer than MIN_EXPECTED times share one bin."""
    n = sum(counts.values())
    keys = [_key(v) for v in requested.values]
    probability = dict(zip(keys, requested.probabilities))
    unexpected = sum(c for k, c in counts.items() if not probability.get(k))
    plot = {"kind": "categories", "labels": [str(v) for v in requested.values][:PLOT_CATEGORIES],
            "expected": [n * p for p in requested.probabilities][:PLOT_CATEGORIES],
            "observed": [counts.get(k, 0) for k in keys][:PLOT_CATEGORIES]}
    if unexpected:
        return {"test": "chi-square", "statistic": None, "p_value": 0.0, "unexpected": unexpected, "plot": plot}
    big = [(counts.get(k, 0), n * p) for k, p in zip(keys, requested.probabilities) if n * p >= MIN_EXPECTED]
    small = [(counts.get(k, 0), n * p) for k, p in zip(keys, requested.probabilities) if 0 < n * p < MIN_EXPECTED]
    if small:
        pooled = (sum(o for o, _ in small), sum(e for _, e in small))
        if pooled[1] >= MIN_EXPECTED or not big:
            big.append(pooled)
        else:  # still too few: into the least expected bin
            i = min(range(len(big)), key=lambda j: big[j][1])
            big[i] = (big[i][0] + pooled[0], big[i][1] + pooled[1])
    if len(big) < 2:
        return {"test": None, "why": "too few rows, or one value, for a chi-square test", "plot": plot}
    return {**chi_square([o for o, _ in big], [e for _, e in big], "chi-square"), "plot": plot}


def _quantile(requested: Requested, q: float) -> int:
    """The least whole step k with cdf(k) >= q."""
    low, high = math.floor(requested.low), math.ceil(requested.high)
    while low < high:
        mid = (low + high) // 2
        if requested.cdf(mid) >= q:
            high = mid
        else:
            low = mid + 1
    return low


def _discrete(requested: Requested, points: np.ndarray) -> dict[str, Any]:
    """Chi-square over bins of whole steps, edged at the requested quantiles so each expects
    about as many values, merged where an atom leaves one below MIN_EXPECTED."""
    n = len(points)
    if np.any(points != np.floor(points)) or n and (points.min() < requested.low or points.max() > requested.high):
        return {"test": "chi-square", "statistic": None, "p_value": 0.0, "why": "values off the requested steps or range"}
    count = max(2, min(MAX_BINS, n // (2 * MIN_EXPECTED)))
    edges = sorted({_quantile(requested, j / count) for j in range(1, count)} - {math.ceil(requested.high)})
    cuts = [requested.cdf(e) for e in edges]  # bin j holds (edges[j-1], edges[j]]
    mass = np.diff([0.0, *cuts, 1.0])
    observed = np.bincount(np.searchsorted(np.array(edges, dtype=float), points, side="left"), minlength=len(mass)).tolist()
    expected = (mass * n).tolist()
    merged_o, merged_e = [], []
    for o, e in zip(observed, expected):
        if merged_e and merged_e[-1] < MIN_EXPECTED:
            merged_o[-1] += o
            merged_e[-1] += e
        else:
            merged_o.append(o)
            merged_e.append(e)
    if len(merged_e) > 1 and merged_e[-1] < MIN_EXPECTED:
        merged_o[-2:] = [sum(merged_o[-2:])]
        merged_e[-2:] = [sum(merged_e[-2:])]
    if len(merged_e) < 2:
        return {"test": None, "why": "too few rows, or one value, for a chi-square test"}
    return chi_square(merged_o, merged_e, "chi-square over binned steps")


def _histogram(requested: Requested, points: np.ndarray) -> dict[str, Any]:
    """Observed counts in PLOT_BINS bars over the observed range, the counts requested there, and
    the range's ends as values."""
    low, high = float(points.min()), float(points.max())
    if requested.kind == "discrete":  # bars of whole steps: k stands for (k - 0.5, k + 0.5]
        width = max(1, math.ceil((high - low + 1) / PLOT_BINS))
        edges = [low - 0.5 + width * i for i in range(math.ceil((high - low + 1) / width) + 1)]
    else:
        edges = list(np.linspace(low, high, PLOT_BINS + 1)) if high > low else [low - 0.5, low + 0.5]
    observed, _ = np.histogram(points, bins=edges)
    n = len(points)
    expected = [n * (requested.cdf(b) - requested.cdf(a)) for a, b in zip(edges, edges[1:])]
    label = requested.label or (lambda x: str(int(x)) if requested.kind == "discrete" else f"{x:.4g}")
    return {"kind": "histogram", "edges": [float(e) for e in edges], "observed": observed.tolist(), "expected": expected,
            "range_labels": [label(low), label(high)]}


def fit(requested: Requested, values: list[Any] | Counter) -> dict[str, Any]:
    """How well `values` (none null; or a Counter of them) follow `requested`: the test used,
    its statistic and p-value, n, and what the UI plots."""
    counts = values if isinstance(values, Counter) else _counted(values)
    n = sum(counts.values())
    if requested.kind == "categorical":
        return {"n": n, **_categorical(requested, counts)}
    if n == 0:
        return {"n": 0, "test": None, "why": "no values"}
    # Each distinct value is put on the axis, and its cdf taken, once.
    distinct = np.array([requested.axis(v) for v in counts], dtype=float)
    order = np.argsort(distinct)
    distinct, repeats = distinct[order], np.array(list(counts.values()))[order]
    points = np.repeat(distinct, repeats)
    plot = _histogram(requested, points)
    if requested.kind == "discrete":
        return {"n": n, **_discrete(requested, points), "plot": plot}
    at = np.array([requested.cdf(x) for x in distinct])
    result = stats.kstest(points, lambda x: at[np.searchsorted(distinct, x)])
    return {"n": n, "test": "kolmogorov-smirnov", "statistic": float(result.statistic), "p_value": float(result.pvalue), "plot": plot}


def _lengths(texts: Counter) -> dict[str, Any]:
    """Length statistics of the strings counted in `texts`."""
    if not texts:
        return {"n": 0}
    lengths = np.repeat(np.array([len(t) for t in texts], dtype=float), np.array(list(texts.values())))
    low, high = int(lengths.min()), int(lengths.max())
    width = max(1, math.ceil((high - low + 1) / PLOT_BINS))
    edges = [low - 0.5 + width * i for i in range(math.ceil((high - low + 1) / width) + 1)]
    counts, _ = np.histogram(lengths, bins=edges)
    return {"n": len(lengths), "min": low, "p50": float(np.percentile(lengths, 50)), "p90": float(np.percentile(lengths, 90)),
            "max": high, "mean": float(lengths.mean()), "histogram": {"edges": edges, "counts": counts.tolist()}}


def _types(node: dict[str, Any]) -> set[str]:
    types = node.get("type")
    return set(types if isinstance(types, list) else [types] if types else [])


def field_report(counts: Counter, rows: int, node: dict[str, Any], source: str, sampler: Sampler | None) -> dict[str, Any]:
    """One field's account over `rows` rows; `counts` counts its values other than null."""
    present = sum(counts.values())
    report: dict[str, Any] = {"source": source, "n": rows, "null_rate": (rows - present) / rows if rows else 0.0,
                              "distinct": len(counts), "distinct_share": len(counts) / present if present else 0.0}
    requested = sampler.requested() if sampler is not None else None
    if sampler is not None:
        report["sampler"] = sampler.name
    if requested is not None:
        report["fit"] = fit(requested, counts)
    allowed = requested.values if requested is not None and requested.kind == "categorical" else tuple(node.get("enum", ()))
    if allowed:
        missing = [v for v in allowed if _key(v) not in counts]
        report["coverage"] = {"allowed": len(allowed), "seen": len(allowed) - len(missing), "missing": missing[:MISSING_SHOWN]}
    if source == "model" and "string" in _types(node) and "enum" not in node:
        texts = Counter({v: c for v, c in counts.items() if isinstance(v, str)})
        report["lengths"] = _lengths(texts)
        report["repeated_share"] = sum(c for c in texts.values() if c > 1) / sum(texts.values()) if texts else 0.0
    return report


class QualityTally:
    """A table's rows counted as they are written, for its report: each field's values and the
    rows' hashes (for the distinct share); the rows themselves are not kept."""

    def __init__(self, read: RowSchema, given: frozenset[str] = frozenset()):
        """`given` names fields whose values came from elsewhere (seed rows, foreign keys), not
        from a sampler or the model."""
        self.read = read
        self.given = given
        self.rows = 0
        self.values: dict[str, Counter] = {name: Counter() for name in read.schema.get("properties", {})}
        self.hashes: set[int] = set()

    def add(self, rows: list[dict[str, Any]]) -> None:
        values = self.values
        for row in rows:
            self.rows += 1
            items = tuple(row.items())
            try:
                self.hashes.add(hash(items))
            except TypeError:  # a row holding objects or arrays
                self.hashes.add(hash(tuple((k, _key(v)) for k, v in items)))
            for name, value in items:
                counter = values.get(name)
                if counter is None or value is None:
                    continue
                try:
                    counter[value] += 1
                except TypeError:
                    counter[_key(value)] += 1

    def report(self) -> dict[str, Any]:
        read, schema = self.read, self.read.schema
        samplers = read.samplers.samplers if read.samplers else {}
        computed = set(read.design.computed) if read.design else set()
        fields = {}
        for name, node in schema.get("properties", {}).items():
            source = "given" if name in self.given else "sampled" if name in samplers else "computed" if name in computed else "model"
            fields[name] = field_report(self.values[name], self.rows, resolve(schema, node), source, samplers.get(name) if source == "sampled" else None)
        distinct = len(self.hashes)
        return {"rows": self.rows, "distinct_rows": distinct, "distinct_row_ratio": distinct / self.rows if self.rows else 0.0, "fields": fields}


def table_report(rows: list[dict[str, Any]], read: RowSchema, given: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The quality report of `rows` made from the schema `read` (QualityTally at once)."""
    tally = QualityTally(read, given)
    tally.add(rows)
    return tally.report()
