"""Prepared statements (the ingest path's, on the driver's cursor) behave as Core's on every engine."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from lightbox.index.models import patients
from lightbox.index.prepared import Prepared
from lightbox.index.sql import SqlIndex
from lightbox.index.utc import aware

_PATIENT = {
    "patient_id": "P1",
    "issuer_of_patient_id": "",
    "patient_name": "DOE^JANE",
    "patient_name_fold": "DOE^JANE",
    "patient_birth_date": "19700101",
    "patient_sex": "F",
    "attrs": {"00100020": {"vr": "LO", "Value": ["P1"]}},
}


def test_insert_takes_defaults_and_values_round_trip(index: SqlIndex) -> None:
    dialect = index.engine.dialect
    create = Prepared(insert(patients).returning(patients.c.id), dialect, by_keys=True)
    read = Prepared(
        select(patients.c.attrs, patients.c.num_studies, patients.c.created_at).where(
            patients.c.id == bindparam("id_")
        ),
        dialect,
    )
    created = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)

    def run(conn: Connection) -> tuple[Any, ...] | None:
        row_id = create.scalar(conn, {**_PATIENT, "created_at": created})
        return read.first(conn, {"id_": row_id})

    row = index.write(run)
    assert row is not None
    attrs, num_studies, created_at = row
    assert attrs == _PATIENT["attrs"]
    assert num_studies == 0  # the column's default, as Core would have given it
    assert aware(created_at) == created
    # Core reads what the prepared statement wrote exactly as its own
    core = index.read(lambda conn: conn.execute(select(patients.c.attrs, patients.c.created_at)).one())
    assert core.attrs == _PATIENT["attrs"]


def test_driver_errors_are_sqlalchemy_errors(index: SqlIndex) -> None:
    """The unit of work retries on SQLAlchemy's IntegrityError (a concurrent insert): it must see one."""
    create = Prepared(insert(patients), index.engine.dialect, by_keys=True)
    values = {**_PATIENT, "created_at": datetime.now(UTC)}
    index.write(lambda conn: create.run(conn, values))
    with pytest.raises(IntegrityError), index.engine.connect() as conn, conn.begin():
        create.run(conn, values)
