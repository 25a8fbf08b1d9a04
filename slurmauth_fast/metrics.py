"""Prometheus metrics of the proxy and the shim (prometheus-client, one registry per server).

- ``slurmauth_requests_total{outcome, plugin}``: each request decided: forwarded, answered,
  rate_limited, refused, upstream_error (what the serving core decided by itself, the
  auth/slurm requests it forwarded or rate-limited, counted by the core);
- ``slurmauth_core_*``: the serving core's own counters (accepted connections, frames
  verified / refused / malformed in C, drops by cause, bytes), read at scrape time;
- ``slurmauth_rate_limited_by_uid{uid}``: the uids refused most often (top N only);
- ``slurmauth_upstream_seconds``: time from forwarding a request to its relayed reply
  (counted into buckets by the serving core, read at scrape time);
- ``slurmauth_verify_seconds{plugin}``: time to verify a credential outside the core
  (munged round trip, auth/jwt).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

#: Core counters exported as gauges (they are levels, not totals).
_CORE_GAUGES = frozenset({"conns_open", "conns_high", "buffered", "buffered_high"})
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 0.5, 1.0, 2.5)


#: (outcome, plugin) of the requests the serving core decides by itself, by its counter.
_CORE_DECIDED = {"auto_forwarded": ("forwarded", "auth/slurm"),
                 "rate_limited": ("rate_limited", "auth/slurm")}


class _CoreCollector(Collector):
    def __init__(self, stats: Callable[[], Dict[str, int]],
                 top_limited: Callable[[], List[Tuple[int, int]]],
                 latency: Optional[Callable[[], Tuple[List[int], int]]],
                 decided: Dict[Tuple[str, str], int]) -> None:
        self._stats = stats
        self._top = top_limited
        self._latency = latency
        self._decided = decided

    def collect(self) -> Iterable[Any]:
        stats = self._stats()
        decided = dict(self._decided)             # (a copy: the loop adds to it meanwhile)
        for name, key in _CORE_DECIDED.items():
            if stats.get(name):
                decided[key] = decided.get(key, 0) + stats[name]
        requests = CounterMetricFamily("slurmauth_requests", "requests by outcome and auth plugin",
                                       labels=["outcome", "plugin"])
        for (outcome, plugin), n in sorted(decided.items()):
            requests.add_metric([outcome, plugin], n)
        yield requests
        for name, value in sorted(stats.items()):
            if name in _CORE_GAUGES:
                yield GaugeMetricFamily(f"slurmauth_core_{name}", f"serving core: {name}",
                                        value=value)
            else:
                yield CounterMetricFamily(f"slurmauth_core_{name}", f"serving core: {name}",
                                          value=value)
        top = GaugeMetricFamily("slurmauth_rate_limited_by_uid",
                                "requests refused by the rate limit, for the uids refused most",
                                labels=["uid"])
        for uid, count in self._top():
            top.add_metric([str(uid)], count)
        yield top
        if self._latency is not None:
            counts, total_ns = self._latency()
            if counts:
                cumulative, buckets = 0, []
                for bound, n in zip([*map(str, LATENCY_BUCKETS), "+Inf"], counts):
                    cumulative += n
                    buckets.append((bound, cumulative))
                yield HistogramMetricFamily("slurmauth_upstream_seconds",
                                            "upstream time per forwarded request",
                                            buckets=buckets, sum_value=total_ns / 1e9)


class FrontEndMetrics:
    """The metrics of one server. ``stats`` reads the core's counters, ``top_limited`` the
    rate limiter's top uids, ``latency`` the core's upstream-time buckets (counts per
    :data:`LATENCY_BUCKETS` bound and above them, total ns); all are called at scrape time.
    :meth:`count` counts a request decided in Python (on the serving loop's thread)."""

    def __init__(self, stats: Callable[[], Dict[str, int]],
                 top_limited: Callable[[], List[Tuple[int, int]]] = list,
                 latency: Optional[Callable[[], Tuple[List[int], int]]] = None) -> None:
        self.registry = CollectorRegistry()
        self._decided: Dict[Tuple[str, str], int] = {}
        self.verify = Histogram("slurmauth_verify_seconds",
                                "credential verification outside the core",
                                ["plugin"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.registry.register(_CoreCollector(stats, top_limited, latency, self._decided))
        self._server: Optional[Any] = None

    def count(self, outcome: str, plugin: str) -> None:
        key = (outcome, plugin)
        self._decided[key] = self._decided.get(key, 0) + 1

    def serve(self, host: str, port: int) -> int:
        """Expose /metrics on host:port (port 0: any free port); returns the port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        return int(server.server_address[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


__all__ = ["LATENCY_BUCKETS", "FrontEndMetrics"]
