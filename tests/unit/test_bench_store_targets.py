"""The C-STORE rows of the benchmark's report judged against the issue's ratios to storescp: one
association 60%, four 80%, at the stated size only."""

from __future__ import annotations

from typing import Any

from bench.report import targets


def _row(associations: int, pdu: int, ratio: float, instances: int = 1000) -> dict[str, Any]:
    return {
        "label": f"{associations} assoc., {'128 kB' if pdu > 16384 else '16 kB'} PDU",
        "associations": associations,
        "max_send_pdu": pdu,
        "instances": instances,
        "storescp_per_s": 1000.0,
        "lightbox_per_s": 1000.0 * ratio,
        "lightbox_mb_per_s": 0.0,
        "lightbox_cpu_ms": 3.0,
        "ratio": ratio,
    }


def _store_targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    results = {"run": {"mode": "full"}, "dimse": {"store": {"rows": rows}}}
    return [t for t in targets(results) if "C-STORE" in t["target"]]


def test_each_configuration_is_judged_by_its_number_of_associations() -> None:
    judged = _store_targets([_row(1, 16384, 0.61), _row(1, 131072, 0.42), _row(4, 16384, 0.79)])
    assert [t["met"] for t in judged] == [True, False, False]
    assert judged[0]["target"] == (
        "DIMSE C-STORE, 1 assoc., 16 kB PDU, >= 60% of storescp's rate (every object durable and indexed)"
    )
    assert judged[2]["target"].startswith("DIMSE C-STORE, 4 assoc., 16 kB PDU, >= 80%")
    assert judged[1]["measured"] == "0.42 (420/s, storescp 1000/s)"


def test_a_run_smaller_than_the_stated_one_is_not_judged() -> None:
    (judged,) = _store_targets([_row(4, 131072, 0.9, instances=100)])
    assert judged["met"] is None
