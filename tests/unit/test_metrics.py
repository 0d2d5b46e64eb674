"""Metrics: counters follow the service events, latencies are labelled by route template and DIMSE service,
and each archive's registry is its own."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException

from lightbox.api import observability
from lightbox.dicomnet import dimse
from lightbox.dicomnet.association import Message
from lightbox.dimse.scp import ArchiveSCP
from lightbox.domain.actor import Actor
from lightbox.metrics import Metrics, protocol_of
from lightbox.services.events import (
    EventBus,
    InstanceRejected,
    InstancesDeleted,
    InstancesRetrieved,
    InstanceStored,
)


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def _stored(source: str, outcome: str, size: int) -> InstanceStored:
    return InstanceStored(source, outcome, "1.2", "1.2.3", "1.2.4", "1.2.5", size)


def test_counters_follow_the_events() -> None:
    events, metrics = EventBus(), Metrics()
    metrics.subscribe(events)
    events.publish(_stored("dimse:MODALITY", "stored", 1000))
    events.publish(_stored("dimse:MODALITY", "replaced", 500))
    events.publish(_stored("stow:10.0.0.1", "already-present", 700))  # acknowledged, nothing new kept
    events.publish(InstanceRejected("dimse:MODALITY", "bad", 0xC000))
    events.publish(InstancesRetrieved("wado:10.0.0.2", ("1.2.5",), 3, 4200))
    events.publish(InstancesRetrieved("dimse:A->B", ("1.2.5",), 1, 100))
    events.publish(InstancesDeleted("api:127.0.0.1", "SERIES", "1.2.4", "P1", "1.2.5", ("1", "2"), 900))

    stored = "lightbox_instances_stored_total"
    assert _value(metrics, stored, protocol="dimse", outcome="stored") == 1
    assert _value(metrics, stored, protocol="dimse", outcome="replaced") == 1
    assert _value(metrics, stored, protocol="stow", outcome="already-present") == 1
    assert _value(metrics, "lightbox_stored_bytes_total", protocol="dimse") == 1500
    assert _value(metrics, "lightbox_stored_bytes_total", protocol="stow") == 0
    assert _value(metrics, "lightbox_instances_rejected_total", protocol="dimse") == 1
    assert _value(metrics, "lightbox_instances_retrieved_total", protocol="wado") == 3
    assert _value(metrics, "lightbox_retrieved_bytes_total", protocol="wado") == 4200
    assert _value(metrics, "lightbox_retrieved_bytes_total", protocol="dimse") == 100
    assert _value(metrics, "lightbox_instances_deleted_total") == 2
    assert _value(metrics, "lightbox_deleted_bytes_total") == 900


def test_each_archive_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.observe_dimse("C-ECHO", "success", 0.001)
    assert (
        _value(first, "lightbox_dimse_request_duration_seconds_count", service="C-ECHO", status="success")
        == 1
    )
    assert (
        _value(second, "lightbox_dimse_request_duration_seconds_count", service="C-ECHO", status="success")
        == 0
    )


@pytest.mark.parametrize(
    ("source", "protocol"),
    [("dimse:PEER", "dimse"), ("import:/a/b.dcm", "import"), ("t", "t"), ("", "other"), ("X Y:z", "other")],
)
def test_protocol_label_has_bounded_values(source: str, protocol: str) -> None:
    assert protocol_of(source) == protocol


def _app(metrics: Metrics) -> FastAPI:
    app = FastAPI()
    observability.install(app, metrics)

    @app.get("/api/studies/{uid}")
    async def study(uid: str) -> dict[str, str]:
        if uid == "0":
            raise HTTPException(404, "no such study")
        return {"uid": uid}

    return app


def _get(app: FastAPI, *paths: str) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [await client.get(path) for path in paths]

    return asyncio.run(run())


def test_http_latency_is_labelled_by_route_template_never_by_uid() -> None:
    metrics = Metrics()
    _get(_app(metrics), "/api/studies/1.2.3", "/api/studies/1.2.4", "/api/studies/0", "/nowhere")
    count = "lightbox_http_request_duration_seconds_count"
    template = "/api/studies/{uid}"
    assert _value(metrics, count, route=template, method="GET", status="200") == 2
    assert _value(metrics, count, route=template, method="GET", status="404") == 1
    assert _value(metrics, count, route=observability.UNMATCHED, method="GET", status="404") == 1
    exposition = _get(_app(metrics), "/metrics")[0]
    assert exposition.headers["content-type"].startswith("text/plain")
    assert "1.2.3" not in metrics.exposition().decode()


PEER = Actor("dimse", ae_title="PEER")


class _Association:
    calling_ae = "PEER"

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, context_id: int, command: Any, dataset: bytes | None = None) -> None:
        self.sent.append(command)


def _scp(metrics: Metrics) -> ArchiveSCP:
    # C-ECHO and C-CANCEL need none of the services
    return ArchiveSCP("LIGHTBOX", None, None, None, None, None, None, metrics=metrics)  # type: ignore[arg-type]


def test_dimse_latency_by_service_and_status() -> None:
    metrics = Metrics()
    scp, association = _scp(metrics), _Association()
    for message_id in (1, 2):
        asyncio.run(scp.handle(association, Message(1, dimse.c_echo_rq(message_id)), PEER))  # type: ignore[arg-type]
    assert [rsp["Status"] for rsp in association.sent] == [0, 0]
    count = "lightbox_dimse_request_duration_seconds_count"
    assert _value(metrics, count, service="C-ECHO", status="success") == 2


def test_commands_that_are_not_services_are_not_timed() -> None:
    metrics = Metrics()
    scp, association = _scp(metrics), _Association()
    cancel = {"CommandField": dimse.C_CANCEL_RQ, "MessageIDBeingRespondedTo": 7}
    asyncio.run(scp.handle(association, Message(1, cancel), PEER))  # type: ignore[arg-type]
    with pytest.raises(dimse.DIMSEError):  # N-CREATE: not served
        asyncio.run(scp.handle(association, Message(1, {"CommandField": 0x0140, "MessageID": 1}), PEER))  # type: ignore[arg-type]
    assert "lightbox_dimse_request_duration_seconds_count{" not in metrics.exposition().decode()
