"""Core statements compiled once per engine and run on the driver's own cursor: the ingest hot path.

For each statement it runs, SQLAlchemy Core sets up an execution context, a result and its events, which
cost about as much CPU as SQLite spends running the statement; an ingest runs about ten per object. A
``Prepared`` statement is the same Core statement, compiled once for the engine's dialect (one SQL
generator for every engine still), with the bind and result conversions of its column types; it runs on
the DB-API cursor of the unit of work's connection, inside its transaction. Driver errors are raised as
SQLAlchemy's (``IntegrityError``, ``OperationalError``...), so the unit of work retries them as before.
psycopg prepares a statement run often on the server by itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.schema import ScalarElementColumnDefault

_Convert = Callable[[Any], Any]


class _Compiled:
    """One statement compiled for one set of parameter names: its SQL, and how to bind and read."""

    __slots__ = ("binds", "fixed", "names", "positional", "results", "sql")

    def __init__(self, statement: Any, dialect: Dialect, keys: Sequence[str] | None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=keys)
        assert isinstance(compiled, SQLCompiler)
        if compiled.escaped_bind_names:
            raise ValueError(
                f"parameter names needing escapes are not handled: {compiled.escaped_bind_names}"
            )
        self.sql = compiled.string
        self.positional = compiled.positiontup is not None
        self.names: Sequence[str] = list(compiled.positiontup or compiled.binds)
        self.binds: dict[str, _Convert] = {}
        for name, bind in compiled.binds.items():
            convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if convert is not None:
                self.binds[name] = convert
        # The values the statement holds itself (``count + 1``), and an INSERT's columns left out get
        # their scalar defaults, as Core gives them when it executes.
        self.fixed: dict[str, Any] = {
            n: b.effective_value for n, b in compiled.binds.items() if not b.required
        }
        if isinstance(statement, Insert):
            for column in statement.table.columns:
                if column.key in compiled.binds and column.key not in (keys or ()):
                    default = column.default
                    if default is None or not isinstance(default, ScalarElementColumnDefault):
                        raise ValueError(
                            f"{column} needs a value: prepared INSERTs apply scalar defaults only"
                        )
                    self.fixed[column.key] = default.arg
        self.results: list[_Convert | None] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.exported_columns
        ]

    def parameters(self, values: Mapping[str, Any]) -> Any:
        params = {**self.fixed, **values}
        for name, convert in self.binds.items():
            params[name] = convert(params[name])
        if self.positional:
            return tuple(params[name] for name in self.names)
        return params

    def row(self, raw: Sequence[Any] | None) -> tuple[Any, ...] | None:
        if raw is None:
            return None
        return tuple(
            v if convert is None else convert(v) for v, convert in zip(raw, self.results, strict=True)
        )


class Prepared:
    """A Core statement prepared for one engine's ``dialect``, to run on its connections' DB-API cursors.
    ``by_keys``: an INSERT whose columns are the keys of the values it is given (compiled once for each
    set of keys)."""

    def __init__(self, statement: Any, dialect: Dialect, *, by_keys: bool = False) -> None:
        self._statement = statement
        self._dialect = dialect
        self._by_keys = by_keys
        self._compiled: dict[tuple[str, ...] | None, _Compiled] = {}

    def _for(self, values: Mapping[str, Any]) -> _Compiled:
        keys = tuple(values) if self._by_keys else None
        compiled = self._compiled.get(keys)
        if compiled is None:
            compiled = self._compiled[keys] = _Compiled(self._statement, self._dialect, keys)
        return compiled

    def execute(self, conn: Connection, values: Mapping[str, Any]) -> tuple[_Compiled, Any]:
        compiled = self._for(values)
        return compiled, execute_raw(conn, compiled.sql, compiled.parameters(values))

    def run(self, conn: Connection, values: Mapping[str, Any]) -> None:
        """Run it for its effect."""
        _, cursor = self.execute(conn, values)
        cursor.close()

    def first(self, conn: Connection, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row of its result, its values converted as their column types say; None if none."""
        compiled, cursor = self.execute(conn, values)
        try:
            return compiled.row(cursor.fetchone())
        finally:
            cursor.close()

    def first_by_name(self, conn: Connection, values: Mapping[str, Any]) -> dict[str, Any] | None:
        """The first row as ``first`` gives it, by the names (keys or labels) of its columns."""
        row = self.first(conn, values)
        if row is None:
            return None
        return dict(zip((c.key for c in self._statement.exported_columns), row, strict=True))

    def rows(self, conn: Connection, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Every row of its result, converted as ``first`` converts one."""
        compiled, cursor = self.execute(conn, values)
        try:
            return [compiled.row(raw) for raw in cursor.fetchall()]  # type: ignore[misc]
        finally:
            cursor.close()

    def scalar(self, conn: Connection, values: Mapping[str, Any]) -> Any:
        """The first value of the first row, or None."""
        row = self.first(conn, values)
        return None if row is None else row[0]


def execute_raw(conn: Connection, sql: str, params: Any = ()) -> Any:
    """Run ``sql`` on a new DB-API cursor of ``conn``'s connection, and return the cursor; a driver error
    is raised as SQLAlchemy's."""
    raw = conn.connection.driver_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        cursor.execute(sql, params)
    except conn.dialect.loaded_dbapi.Error as exc:
        cursor.close()
        error = conn.dialect.loaded_dbapi.Error
        raise DBAPIError.instance(sql, params, exc, error, dialect=conn.dialect) from exc
    return cursor
