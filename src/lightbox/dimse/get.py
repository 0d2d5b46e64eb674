"""C-GET SCP on the retrieve service (PS3.4 C.4.3): C-STORE sub-operations on the same association.

Each stored object goes on a presentation context the peer accepted for its SOP class, with the SCP role
negotiated. When the peer accepted the stored transfer syntax, the object is sent as stored (its data set
after the File Meta Information, streamed from storage in chunks); otherwise it is converted, decompressed
if need be, to explicit VR little endian or else implicit VR little endian when the peer accepted one of
them (PS3.4 C.4.3). An object with neither is a failed sub-operation: in the Failed SOP Instance UID List.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from lightbox.dicomnet import dimse, status
from lightbox.dicomnet.association import Association, Message
from lightbox.dimse.identifiers import encode_identifier
from lightbox.dimse.requests import Cancellations, resolve_selection
from lightbox.domain.actor import Actor
from lightbox.domain.errors import LightboxError
from lightbox.formats.encoding import LONG_VRS, PART10_PREAMBLE
from lightbox.index.base import InstanceLocation
from lightbox.services.retrieve import RetrieveService
from lightbox.services.transcode import TARGETS, can_convert

log = logging.getLogger(__name__)

PATIENT_ROOT_GET = "1.2.840.10008.5.1.4.1.2.1.3"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
GET_MODELS = frozenset({PATIENT_ROOT_GET, STUDY_ROOT_GET})
_CHUNK = 256 * 1024


def data_set_start(head: bytes) -> int:
    """Offset of the data set in a Part 10 object: after the explicit VR little endian group 0002."""
    pos = PART10_PREAMBLE
    while pos + 8 <= len(head) and head[pos : pos + 2] == b"\x02\x00":
        if head[pos + 4 : pos + 6] in LONG_VRS:
            pos += 12 + struct.unpack_from("<I", head, pos + 8)[0]
        else:
            pos += 8 + struct.unpack_from("<H", head, pos + 6)[0]
    return pos


async def stream_data_set(
    retrieve: RetrieveService, executor: Executor, location: InstanceLocation
) -> AsyncIterator[bytes]:
    """The stored object's data set (without its File Meta Information), read from storage in chunks."""
    loop = asyncio.get_running_loop()
    f = await loop.run_in_executor(executor, retrieve.open, location)
    try:
        head = await loop.run_in_executor(executor, f.read, _CHUNK)
        yield head[data_set_start(head) :]
        while chunk := await loop.run_in_executor(executor, f.read, _CHUNK):
            yield chunk
    finally:
        f.close()


async def outgoing_data_set(
    retrieve: RetrieveService, executor: Executor, location: InstanceLocation, transfer_syntax: str
) -> AsyncIterator[bytes]:
    """The data set to send in ``transfer_syntax``: streamed as stored, or converted in the executor.

    A conversion is done before the C-STORE-RQ goes out, so that an object that cannot be converted fails
    alone instead of leaving a request without its data set on the association."""
    if transfer_syntax == location.transfer_syntax_uid:
        return stream_data_set(retrieve, executor, location)
    loop = asyncio.get_running_loop()
    converted = await loop.run_in_executor(executor, retrieve.converted, location, transfer_syntax)
    return _single(converted)


async def _single(data: bytes) -> AsyncIterator[bytes]:
    yield data


def choose_context(
    contexts: Mapping[int, tuple[str, str]], sop_class_uid: str, stored_syntax: str
) -> tuple[int, str] | None:
    """The accepted presentation context to send an object on, and the transfer syntax to send it in: its
    stored syntax if accepted, else explicit then implicit VR little endian if it converts to them."""
    accepted: dict[str, int] = {}
    for context_id, (abstract, syntax) in sorted(contexts.items()):
        if abstract == sop_class_uid:
            accepted.setdefault(syntax, context_id)
    if stored_syntax in accepted:
        return accepted[stored_syntax], stored_syntax
    for syntax in TARGETS:
        if syntax in accepted and can_convert(stored_syntax, syntax):
            return accepted[syntax], syntax
    return None


def prefetch_next(
    retrieve: RetrieveService, executor: Executor, locations: Sequence[InstanceLocation], i: int
) -> None:
    """Let storage read the next objects ahead while object ``i`` is being sent (not awaited: a hint)."""
    if i + 1 < len(locations):
        asyncio.get_running_loop().run_in_executor(executor, retrieve.prefetch_ahead, locations, i)


@dataclass
class SubOperations:
    """The C-STORE sub-operations of one C-GET or C-MOVE: counts, failures and the final status."""

    remaining: int
    completed: int = 0
    failed: int = 0
    warning: int = 0
    failed_uids: list[str] = field(default_factory=list)
    sent: list[InstanceLocation] = field(default_factory=list)
    cancelled: bool = False

    def record(self, location: InstanceLocation, outcome: str) -> None:
        """``outcome`` is the status category of the sub-operation's C-STORE-RSP ("failure" if none came)."""
        self.remaining -= 1
        if outcome in ("success", "warning"):
            self.completed += outcome == "success"
            self.warning += outcome == "warning"
            self.sent.append(location)
        else:
            self.failed += 1
            self.failed_uids.append(location.sop_instance_uid)

    def counts(self) -> tuple[int, int, int, int]:
        return self.remaining, self.completed, self.failed, self.warning

    def final_response(
        self, builder: Callable[..., dimse.CommandFields], request: dimse.CommandFields, transfer_syntax: str
    ) -> tuple[dimse.CommandFields, bytes | None]:
        """The final C-GET-RSP or C-MOVE-RSP (``builder``) and its identifier: the Failed SOP Instance UID
        List when there are failures (PS3.4 C.4.2.1.3.1, C.4.3.1.3.1)."""
        identifier = None
        if self.failed_uids:
            ds = Dataset()
            ds.FailedSOPInstanceUIDList = self.failed_uids
            identifier = encode_identifier(ds, transfer_syntax)
        if self.cancelled:
            code = status.CANCEL
        elif self.failed or self.warning:
            code = status.SUBOPERATIONS_COMPLETE_WITH_FAILURES  # B000: any sub-operation failed or warned
        else:
            code = status.SUCCESS
        remaining = self.remaining if self.cancelled else None  # remaining goes only with Cancel
        fields = builder(
            request, code, remaining, self.completed, self.failed, self.warning, identifier is not None
        )
        return fields, identifier


class GetSCP:
    def __init__(self, retrieve: RetrieveService, executor: Executor, cancellations: Cancellations) -> None:
        self.retrieve = retrieve
        self.executor = executor
        self.cancellations = cancellations

    async def get(self, association: Association, message: Message, actor: Actor) -> None:
        command, context_id = message.command, message.context_id
        try:
            locations = await resolve_selection(association, message, self.retrieve, self.executor)
        except LightboxError as exc:
            rsp = dimse.c_get_rsp(command, exc.dicom_status, error_comment=exc.message[:64])
            association.send(context_id, rsp)
            return
        tally = SubOperations(len(locations))
        with self.cancellations.track(association, command) as cancelled:
            for i, location in enumerate(locations):
                if cancelled():
                    tally.cancelled = True
                    break
                prefetch_next(self.retrieve, self.executor, locations, i)
                tally.record(location, await self._store(association, location))
                if tally.remaining:
                    association.send(context_id, dimse.c_get_rsp(command, status.PENDING, *tally.counts()))
        self.retrieve.retrieved(actor, tally.sent)
        final = tally.final_response(dimse.c_get_rsp, command, association.contexts[context_id][1])
        association.send(context_id, *final)

    async def _store(self, association: Association, location: InstanceLocation) -> str:
        if location.sop_class_uid not in association.peer_scp_classes:
            return "failure"  # the peer did not take the SCP role for this SOP class (PS3.7 D.3.3.4)
        chosen = choose_context(association.contexts, location.sop_class_uid, location.transfer_syntax_uid)
        if chosen is None:
            return "failure"  # no context in the stored syntax, nor in one the object converts to
        context_id, syntax = chosen
        try:
            data = await outgoing_data_set(self.retrieve, self.executor, location, syntax)
            rq = dimse.c_store_rq(
                association.new_message_id(), location.sop_class_uid, location.sop_instance_uid
            )
            rsp = await association.request(context_id, rq, data)
        except (ConnectionError, LightboxError) as exc:
            log.warning("C-GET sub-operation for %s failed: %s", location.sop_instance_uid, exc)
            return "failure"
        return status.category(int(rsp.get("Status", 0xC000)))
