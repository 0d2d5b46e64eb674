"""Prometheus metrics: request latencies of the HTTP routes and DIMSE services, and what was stored,
retrieved and deleted.

Each archive has a registry of its own (not prometheus_client's global one), so several archives in one
process (tests) never share counters. The stored / retrieved / deleted counters follow the service events;
the adapters report latencies through ``observe_http`` and ``observe_dimse``. Labels hold only names fixed in
the code (route templates, service names, status categories), never a value from the wire such as a UID.
"""

from __future__ import annotations

import re

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from lightbox.services.events import (
    EventBus,
    InstanceRejected,
    InstancesDeleted,
    InstancesRetrieved,
    InstanceStored,
)

CONTENT_TYPE = CONTENT_TYPE_LATEST
# From a C-ECHO's or a cached metadata response's milliseconds to a large study's minutes.
_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)
_KEPT = {"stored", "replaced"}  # outcomes whose bytes the archive keeps
_PROTOCOL = re.compile(r"[a-z]{1,16}")


def protocol_of(source: str) -> str:
    """The protocol part of an event's source ("dimse:PEER" -> "dimse"): a label of bounded values."""
    head = source.partition(":")[0]
    return head if _PROTOCOL.fullmatch(head) else "other"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_duration = Histogram(
            "lightbox_http_request_duration_seconds",
            "HTTP request latency, to the end of the response body, by route template, method and status.",
            ["route", "method", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.dimse_duration = Histogram(
            "lightbox_dimse_request_duration_seconds",
            "DIMSE request latency, from the complete request to the final response, by service and outcome.",
            ["service", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.instances_stored = Counter(
            "lightbox_instances_stored",
            "Objects received and acknowledged, by protocol and outcome (stored, replaced, already-present, "
            "kept-existing).",
            ["protocol", "outcome"],
            registry=r,
        )
        self.stored_bytes = Counter(
            "lightbox_stored_bytes",
            "Bytes of the objects stored (new or replacing).",
            ["protocol"],
            registry=r,
        )
        self.instances_rejected = Counter(
            "lightbox_instances_rejected", "Objects refused, by protocol.", ["protocol"], registry=r
        )
        self.instances_retrieved = Counter(
            "lightbox_instances_retrieved", "Objects sent to clients, by protocol.", ["protocol"], registry=r
        )
        self.retrieved_bytes = Counter(
            "lightbox_retrieved_bytes",
            "Bytes of the objects sent, as stored (a converted copy may differ), by protocol.",
            ["protocol"],
            registry=r,
        )
        self.instances_deleted = Counter("lightbox_instances_deleted", "Objects deleted.", registry=r)
        self.deleted_bytes = Counter("lightbox_deleted_bytes", "Bytes of the objects deleted.", registry=r)

    def subscribe(self, events: EventBus) -> None:
        events.subscribe(InstanceStored, self._stored)
        events.subscribe(InstanceRejected, self._rejected)
        events.subscribe(InstancesRetrieved, self._retrieved)
        events.subscribe(InstancesDeleted, self._deleted)

    # --- adapters report latencies ---------------------------------------------------------------------
    def observe_http(self, route: str, method: str, status: int, seconds: float) -> None:
        self.http_duration.labels(route, method, str(status)).observe(seconds)

    def observe_dimse(self, service: str, status: str, seconds: float) -> None:
        self.dimse_duration.labels(service, status).observe(seconds)

    def exposition(self) -> bytes:
        """The metrics in the Prometheus text format."""
        return generate_latest(self.registry)

    # --- event handlers --------------------------------------------------------------------------------
    def _stored(self, event: InstanceStored) -> None:
        protocol = protocol_of(str(event.source))
        self.instances_stored.labels(protocol, event.outcome).inc()
        if event.outcome in _KEPT:
            self.stored_bytes.labels(protocol).inc(event.size)

    def _rejected(self, event: InstanceRejected) -> None:
        self.instances_rejected.labels(protocol_of(str(event.source))).inc()

    def _retrieved(self, event: InstancesRetrieved) -> None:
        protocol = protocol_of(str(event.source))
        self.instances_retrieved.labels(protocol).inc(event.instances)
        self.retrieved_bytes.labels(protocol).inc(event.size)

    def _deleted(self, event: InstancesDeleted) -> None:
        self.instances_deleted.inc(len(event.sop_instance_uids))
        self.deleted_bytes.inc(event.size)
