"""CloudWatch metrics as EMF lines (Powertools), counted per batch and written once at its end.

Each metric goes out twice: with only the `service` dimension (what the alarms watch) and with its
own dimensions (source/destination pair, bucket, reason) for the dashboard. Object keys and version
IDs never become dimensions.
"""

from __future__ import annotations

import threading
from collections import defaultdict

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

Dimensions = tuple[tuple[str, str], ...]

UNITS = {
    "ReplicationLatency": MetricUnit.Milliseconds,
    "BytesReplicated": MetricUnit.Bytes,
    "OldestOverdueAge": MetricUnit.Seconds,
    "SecondsSinceLastEvent": MetricUnit.Seconds,
    "EventAge": MetricUnit.Seconds,  # how long after S3 wrote a version the monitor heard of it
    "SloBurnRate": MetricUnit.NoUnit,  # a gauge (crrmon.slo): each value kept, never summed
}


def pair_dimensions(source_bucket: str | None, destination_bucket: str) -> Dimensions:
    return (("SourceBucket", source_bucket or "unknown"), ("DestinationBucket", destination_bucket))


class Counters:
    """Collects metric values during a batch; `flush()` prints them as EMF documents."""

    def __init__(self) -> None:
        self._values: dict[Dimensions, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        self._lock = threading.Lock()  # ingest records observations from several threads

    def add(self, name: str, value: float = 1, *dimension_sets: Dimensions, total: bool = True) -> None:
        """Count `value` in the service-wide total and once under each dimension set given. `total=False`:
        no service-wide value (a gauge whose values of several pairs or windows mean nothing together)."""
        with self._lock:
            if total:
                self._values[()][name].append(value)
            for dimensions in dimension_sets:
                if dimensions:
                    self._values[dimensions][name].append(value)

    def total(self, name: str, dimensions: Dimensions = ()) -> float:
        return sum(self._values.get(dimensions, {}).get(name, ()))

    def values(self, name: str, dimensions: Dimensions = ()) -> list[float]:
        return list(self._values.get(dimensions, {}).get(name, ()))

    def flush(self) -> None:
        for dimensions, metrics in self._values.items():
            emf = EphemeralMetrics()
            for dim_name, dim_value in dimensions:
                emf.add_dimension(name=dim_name, value=dim_value)
            for name, values in metrics.items():
                unit = UNITS.get(name, MetricUnit.Count)
                if unit is MetricUnit.Count:  # counts are summed: one datum per batch
                    emf.add_metric(name=name, unit=unit, value=sum(values))
                else:  # distributions keep every value (EMF takes up to 100 per metric)
                    for value in values[:100]:
                        emf.add_metric(name=name, unit=unit, value=value)
            emf.flush_metrics()
        self._values.clear()
