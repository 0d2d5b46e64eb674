"""C-FIND SCP on the query service (PS3.4 C.4.1): pending responses streamed, C-CANCEL honoured."""

from __future__ import annotations

import asyncio
import io
import itertools
from collections.abc import Iterator
from concurrent.futures import Executor

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

from lightbox.dicomnet import dimse, status
from lightbox.dicomnet.association import Association, Message
from lightbox.domain.errors import LightboxError
from lightbox.domain.levels import Level, Model
from lightbox.services.query import QueryOptions, QueryResult, QueryService, to_dataset

PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
FIND_MODELS = {PATIENT_ROOT_FIND: Model.PATIENT_ROOT, STUDY_ROOT_FIND: Model.STUDY_ROOT}
_IMPLICIT = "1.2.840.10008.1.2"
_BIG_ENDIAN = "1.2.840.10008.1.2.2"
_BATCH = 50  # matches fetched per trip to the worker thread


def decode_identifier(data: bytes, transfer_syntax: str) -> Dataset:
    return read_dataset(io.BytesIO(data), transfer_syntax == _IMPLICIT, transfer_syntax != _BIG_ENDIAN)


def encode_identifier(ds: Dataset, transfer_syntax: str) -> bytes:
    buf = DicomBytesIO()
    buf.is_implicit_VR = transfer_syntax == _IMPLICIT
    buf.is_little_endian = transfer_syntax != _BIG_ENDIAN
    write_dataset(buf, ds)
    return buf.getvalue()


def _options(agreed: bytes) -> QueryOptions:
    """Query options from the extended negotiation we agreed to (PS3.4 C.5.1.1, Table C.5-1)."""
    return QueryOptions(
        combined_datetime=len(agreed) > 1 and agreed[1] == 1,
        case_insensitive_names=len(agreed) > 2 and agreed[2] == 1,
    )


class FindSCP:
    """Serves C-FIND-RQ messages; one instance serves every association."""

    def __init__(self, ae_title: str, query: QueryService, executor: Executor) -> None:
        self.ae_title = ae_title
        self.query = query
        self.executor = executor
        # Finds in progress, by (association, message id); the value turns True on C-CANCEL. The find stops
        # between matches, in the event loop, so the query is never touched from two threads at once.
        self._running: dict[tuple[int, int], bool] = {}

    def cancel(self, association: Association, command: dimse.CommandFields) -> None:
        """C-CANCEL-RQ (PS3.7 9.3.2.3): stop the find it names; the find itself sends the Cancel status."""
        key = (id(association), int(command.get("MessageIDBeingRespondedTo") or 0))
        if key in self._running:
            self._running[key] = True

    async def find(self, association: Association, message: Message) -> None:
        command, context_id = message.command, message.context_id
        abstract_syntax, transfer_syntax = association.contexts[context_id]
        try:
            identifier = decode_identifier(message.dataset or b"", transfer_syntax)
            level = Level(str(identifier.get("QueryRetrieveLevel", "")).strip())
        except Exception as exc:  # an identifier that cannot be decoded, or no valid level
            rsp = dimse.c_find_rsp(command, status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, False, str(exc)[:64])
            association.send(context_id, rsp)
            return
        loop = asyncio.get_running_loop()
        key = (id(association), dimse.message_id(command))
        try:
            result = await loop.run_in_executor(
                self.executor,
                lambda: self.query.find(
                    level,
                    identifier,
                    model=FIND_MODELS[abstract_syntax],
                    options=_options(association.extended.get(abstract_syntax, b"")),
                    source=f"dimse:{association.calling_ae}",
                ),
            )
        except LightboxError as exc:
            association.send(context_id, dimse.c_find_rsp(command, exc.dicom_status, False, exc.message[:64]))
            return
        self._running[key] = False
        try:
            final = await self._stream(association, message, result, level, transfer_syntax, key)
        except LightboxError as exc:
            final = exc.dicom_status
        finally:
            self._running.pop(key, None)
            result.cancel()  # ends the query (and reports it) if it did not run to its end
        association.send(context_id, dimse.c_find_rsp(command, final, False))

    async def _stream(
        self,
        association: Association,
        message: Message,
        result: QueryResult,
        level: Level,
        syntax: str,
        key: tuple[int, int],
    ) -> int:
        loop = asyncio.get_running_loop()
        matches: Iterator[dict[str, object]] = iter(result)
        while True:
            batch = await loop.run_in_executor(self.executor, lambda: list(itertools.islice(matches, _BATCH)))
            for match in batch:
                if self._running.get(key):
                    return status.CANCEL
                ds = to_dataset(match)
                ds.SpecificCharacterSet = "ISO_IR 192"  # values are Unicode; UTF-8 carries them all
                ds.QueryRetrieveLevel = level.value
                if "RetrieveAETitle" in ds:
                    ds.RetrieveAETitle = self.ae_title
                rsp = dimse.c_find_rsp(message.command, status.PENDING, True)
                association.send(message.context_id, rsp, encode_identifier(ds, syntax))
            if self._running.get(key):
                return status.CANCEL
            if len(batch) < _BATCH:
                return status.SUCCESS
