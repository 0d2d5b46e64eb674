"""C-FIND SCP on the query service (PS3.4 C.4.1): pending responses streamed, C-CANCEL honoured."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from typing import Any

from lightbox.dicomnet import dimse, status
from lightbox.dicomnet.association import Association, Message
from lightbox.dimse.requests import Cancellations, read_identifier
from lightbox.domain.actor import Actor
from lightbox.domain.errors import LightboxError
from lightbox.domain.levels import Level, Model
from lightbox.formats.encoding import EXPLICIT_VR_BIG_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN
from lightbox.formats.json_to_dicom import encode_dataset
from lightbox.services.query import QueryOptions, QueryResult, QueryService

PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
FIND_MODELS = {PATIENT_ROOT_FIND: Model.PATIENT_ROOT, STUDY_ROOT_FIND: Model.STUDY_ROOT}
_BATCH = 50  # matches fetched per trip to the worker thread
_UTF8 = {"vr": "CS", "Value": ["ISO_IR 192"]}  # values are Unicode; UTF-8 carries them all


def _options(agreed: bytes) -> QueryOptions:
    """Query options from the extended negotiation we agreed to (PS3.4 C.5.1.1, Table C.5-1)."""
    return QueryOptions(
        combined_datetime=len(agreed) > 1 and agreed[1] == 1,
        case_insensitive_names=len(agreed) > 2 and agreed[2] == 1,
    )


class FindSCP:
    """Serves C-FIND-RQ messages; one instance serves every association."""

    def __init__(
        self, ae_title: str, query: QueryService, executor: Executor, cancellations: Cancellations
    ) -> None:
        self.ae_title = ae_title
        self.query = query
        self.executor = executor
        self.cancellations = cancellations

    async def find(self, association: Association, message: Message, actor: Actor) -> None:
        command, context_id = message.command, message.context_id
        abstract_syntax, transfer_syntax = association.contexts[context_id]
        try:
            identifier, level = read_identifier(association, message)
            result = await asyncio.get_running_loop().run_in_executor(
                self.executor,
                lambda: self.query.find(
                    level,
                    identifier,
                    model=FIND_MODELS[abstract_syntax],
                    options=_options(association.extended.get(abstract_syntax, b"")),
                    source=actor,
                ),
            )
        except LightboxError as exc:
            association.send(context_id, dimse.c_find_rsp(command, exc.dicom_status, False, exc.message[:64]))
            return
        with self.cancellations.track(association, command) as cancelled:
            try:
                final = await self._stream(association, message, result, level, transfer_syntax, cancelled)
            except LightboxError as exc:
                final = exc.dicom_status
            finally:
                result.cancel()  # ends the query (and reports it) if it did not run to its end
        association.send(context_id, dimse.c_find_rsp(command, final, False))

    def _identifier(self, match: dict[str, Any], level: Level, syntax: str) -> bytes:
        """The match as the response's identifier, written straight from its DICOM JSON."""
        doc = {**match, "00080005": _UTF8, "00080052": {"vr": "CS", "Value": [level.value]}}
        if "00080054" in doc:  # Retrieve AE Title: the service leaves it to us
            doc["00080054"] = {"vr": "AE", "Value": [self.ae_title]}
        return encode_dataset(
            doc,
            implicit_vr=syntax == IMPLICIT_VR_LITTLE_ENDIAN,
            little_endian=syntax != EXPLICIT_VR_BIG_ENDIAN,
        )

    async def _stream(
        self,
        association: Association,
        message: Message,
        result: QueryResult,
        level: Level,
        syntax: str,
        cancelled: Callable[[], bool],
    ) -> int:
        loop = asyncio.get_running_loop()
        matches: Iterator[dict[str, object]] = iter(result)
        pending = dimse.c_find_rsp(message.command, status.PENDING, True)  # the same for every match
        while True:
            batch = await loop.run_in_executor(self.executor, lambda: list(itertools.islice(matches, _BATCH)))
            if cancelled():
                return status.CANCEL
            identifiers = [self._identifier(match, level, syntax) for match in batch]
            association.send_responses(message.context_id, pending, identifiers)
            if len(batch) < _BATCH:
                return status.SUCCESS
            await association.drained()  # a peer reading slowly holds the search back, not the memory
