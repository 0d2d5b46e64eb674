"""Audit records as lines of text, for people (``lightbox audit list``) or programs (``--json``)."""

from __future__ import annotations

import orjson

from lightbox.domain.audit import ChainedRecord


def audit_line(chained: ChainedRecord, as_json: bool = False) -> str:
    r = chained.record
    if as_json:
        return orjson.dumps(chained.fields()).decode()  # times in ISO 8601
    who = "/".join(part for part in (r.ae_title, r.user) if part) or "-"
    if r.address:
        who += f"@{r.address}"
    columns = [
        f"{chained.seq:>8}",
        r.time.isoformat(timespec="seconds"),
        f"{r.action.value:<8}",
        f"{r.outcome.value:<7}",
        f"{r.protocol}:{who}",
    ]
    if r.patient_id:
        columns.append(f"patient={r.patient_id}")
    if r.study_instance_uid:
        columns.append(f"study={r.study_instance_uid}")
    if r.instances:
        columns.append(f"n={r.instances}")
    if r.detail:
        columns.append(r.detail)
    return " ".join(columns)
