"""A small Prometheus registry: counters, gauges and histograms with labels, collectors that
compute gauges at scrape time, and the text exposition format (version 0.0.4).

Every component of the control plane records into the process-wide `REGISTRY`; whoever
serves `/metrics` in that process (the API server, or `metrics_server` for a component that
runs as a process of its own) exposes all of it. The metric names are those of the
component each part stands in for (kube-apiserver, controller-runtime, DVP), so existing
dashboards and alert habits carry over.

Recording is one dict lookup and one add under a lock: cheap enough for every request.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

Labels = tuple[str, ...]


@dataclass
class Family:
    """One metric as a collector reports it: samples are (label values, value)."""

    name: str
    type: str
    help: str
    labelnames: Sequence[str] = ()
    samples: list[tuple[Labels, float]] = field(default_factory=list)

    def add(self, value: float, *labels: str) -> None:
        self.samples.append((labels, value))


Collector = Callable[[], Iterable[Family]]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _value(v: float) -> str:
    v = float(v)
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if math.isnan(v):
        return "NaN"
    return repr(float(v))


def _labels(names: Sequence[str], values: Sequence[str]) -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    return "{" + ",".join(parts) + "}" if parts else ""


class _Metric:
    type = ""

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        self.name, self.help, self.labelnames = name, help, tuple(labelnames)
        self._lock = threading.Lock()
        self._rendered: dict[Labels, str] = {}  # label values -> 'a="x",b="y"', escaped once

    def _inner(self, labels: Labels) -> str:
        text = self._rendered.get(labels)
        if text is None:
            text = self._rendered[labels] = ",".join(
                f'{n}="{_escape(v)}"' for n, v in zip(self.labelnames, labels, strict=True))
        return text

    def _braced(self, labels: Labels) -> str:
        inner = self._inner(labels)
        return "{" + inner + "}" if inner else ""

    def _check(self, labels: Labels) -> None:
        if len(labels) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {labels}")

    def _header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.type}"]

    def render(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    type = "counter"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help, labelnames)
        self._values: dict[Labels, float] = {}

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        with self._lock:
            try:
                self._values[labels] += amount
            except KeyError:
                self._check(labels)
                self._values[labels] = amount

    def value(self, *labels: str) -> float:
        return self._values.get(labels, 0.0)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return self._header() + [f"{self.name}{self._braced(k)} {_value(v)}" for k, v in items]


class Gauge(Counter):
    type = "gauge"

    def set(self, value: float, *labels: str) -> None:
        self._check(labels)
        with self._lock:
            self._values[labels] = value

    def dec(self, *labels: str, amount: float = 1.0) -> None:
        self.inc(*labels, amount=-amount)


class Histogram(_Metric):
    type = "histogram"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = (),
                 buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        super().__init__(name, help, labelnames)
        self.buckets = tuple(sorted(buckets))
        self._le = [f'le="{_value(b)}"' for b in self.buckets]
        self._values: dict[Labels, list[float]] = {}  # per-bucket counts, then sum, then count

    def observe(self, value: float, *labels: str) -> None:
        with self._lock:
            row = self._values.get(labels)
            if row is None:
                self._check(labels)
                row = self._values[labels] = [0.0] * (len(self.buckets) + 2)
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    row[i] += 1
                    break
            row[-2] += value
            row[-1] += 1

    def count(self, *labels: str) -> float:
        row = self._values.get(labels)
        return row[-1] if row else 0.0

    def render(self) -> list[str]:
        with self._lock:
            items = sorted((k, list(v)) for k, v in self._values.items())
        out = self._header()
        name = self.name
        for key, row in items:
            inner = self._inner(key)
            sep = inner + "," if inner else ""
            braced = "{" + inner + "}" if inner else ""
            cumulative = 0.0
            for le, n in zip(self._le, row, strict=False):
                cumulative += n
                out.append(f"{name}_bucket{{{sep}{le}}} {_value(cumulative)}")
            out.append(f'{name}_bucket{{{sep}le="+Inf"}} {_value(row[-1])}')
            out.append(f"{name}_sum{braced} {_value(row[-2])}")
            out.append(f"{name}_count{braced} {_value(row[-1])}")
        return out


class Registry:
    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}
        self._collectors: dict[str, Collector] = {}
        self._lock = threading.Lock()

    def _get_or_add(self, metric: _Metric) -> _Metric:
        with self._lock:
            existing = self._metrics.get(metric.name)
            if existing is None:
                self._metrics[metric.name] = metric
                return metric
            if type(existing) is not type(metric) or existing.labelnames != metric.labelnames:
                raise ValueError(f"metric {metric.name} is already registered with another type or labels")
            return existing

    def counter(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Counter:
        m = self._get_or_add(Counter(name, help, labelnames))
        assert isinstance(m, Counter)
        return m

    def gauge(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Gauge:
        m = self._get_or_add(Gauge(name, help, labelnames))
        assert isinstance(m, Gauge)
        return m

    def histogram(self, name: str, help: str, labelnames: Sequence[str] = (),
                  buckets: Sequence[float] = DEFAULT_BUCKETS) -> Histogram:
        m = self._get_or_add(Histogram(name, help, labelnames, buckets))
        assert isinstance(m, Histogram)
        return m

    def add_collector(self, key: str, collector: Collector) -> None:
        """Call `collector` on every scrape; a later collector with the same key replaces it."""
        with self._lock:
            self._collectors[key] = collector

    def remove_collector(self, key: str) -> None:
        with self._lock:
            self._collectors.pop(key, None)

    def expose(self) -> str:
        """Everything registered, in the Prometheus text format."""
        with self._lock:
            metrics = list(self._metrics.values())
            collectors = list(self._collectors.values())
        lines: list[str] = []
        for m in metrics:
            lines.extend(m.render())
        families: dict[str, Family] = {}
        for collect in collectors:
            for fam in collect():
                seen = families.get(fam.name)
                if seen is None:
                    families[fam.name] = Family(fam.name, fam.type, fam.help, fam.labelnames, list(fam.samples))
                else:
                    seen.samples.extend(fam.samples)
        for fam in families.values():
            lines.append(f"# HELP {fam.name} {fam.help}")
            lines.append(f"# TYPE {fam.name} {fam.type}")
            lines.extend(f"{fam.name}{_labels(fam.labelnames, k)} {_value(v)}" for k, v in fam.samples)
        return "\n".join(lines) + "\n"


REGISTRY = Registry()
