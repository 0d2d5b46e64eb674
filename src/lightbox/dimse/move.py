"""C-MOVE SCP on the retrieve service (PS3.4 C.4.2): C-STORE sub-operations to a registered destination.

The destination must be in the remote AE registry (a C-MOVE never sends to an address taken from the wire).
Lightbox opens its own association to it, proposing each stored SOP class in each of its stored transfer
syntaxes, and in explicit and implicit VR little endian where its objects convert to them (one SOP class is
so in several presentation contexts, as PS3.8 allows). Each object is sent as stored when the
destination accepted that, else converted (decompressed if need be) to a syntax it accepted (PS3.4 C.4.2);
one that cannot be is a failed sub-operation. Pending and final counts go to the C-MOVE's requestor.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import Executor

from lightbox.dicomnet import dimse, status
from lightbox.dicomnet.association import AcceptorSettings, Association, Message, associate
from lightbox.dimse.get import SubOperations, choose_context, outgoing_data_set, prefetch_next
from lightbox.dimse.requests import Cancellations, resolve_selection
from lightbox.domain.actor import Actor
from lightbox.domain.errors import LightboxError, NotFound
from lightbox.index.base import InstanceLocation
from lightbox.services.manage import ManageService
from lightbox.services.retrieve import RetrieveService
from lightbox.services.transcode import TARGETS, can_convert

log = logging.getLogger(__name__)

PATIENT_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
MOVE_MODELS = frozenset({PATIENT_ROOT_MOVE, STUDY_ROOT_MOVE})
MAX_CONTEXTS = 128  # PS3.8 9.3.2.2: presentation context ids are the odd numbers 1 to 255


def proposed_contexts(locations: Sequence[InstanceLocation]) -> list[tuple[str, list[str]]]:
    """The presentation contexts to propose to a destination for these objects.

    Each (SOP class, stored transfer syntax) pair has a context with that syntax alone: an acceptor picks from
    a list by its own preference, and may take implicit VR over a stored syntax it also supports. Each SOP
    class with objects that convert has one more, explicit then implicit VR little endian, for a destination
    that refuses the stored syntax. Those come first, so that past the limit objects still go, converted.
    """
    pairs = sorted({(loc.sop_class_uid, loc.transfer_syntax_uid) for loc in locations})
    convertible = sorted({sop for sop, stored in pairs if any(can_convert(stored, ts) for ts in TARGETS)})
    contexts = [(sop_class, list(TARGETS)) for sop_class in convertible]
    contexts += [(sop_class, [stored]) for sop_class, stored in pairs]
    return contexts[:MAX_CONTEXTS]


class MoveSCP:
    def __init__(
        self,
        settings: AcceptorSettings,
        retrieve: RetrieveService,
        manage: ManageService,
        executor: Executor,
        cancellations: Cancellations,
    ) -> None:
        self.settings = settings
        self.retrieve = retrieve
        self.manage = manage
        self.executor = executor
        self.cancellations = cancellations

    async def move(self, association: Association, message: Message, actor: Actor) -> None:
        command, context_id = message.command, message.context_id

        def reply(code: int, comment: str) -> None:
            association.send(context_id, dimse.c_move_rsp(command, code, error_comment=comment[:64]))

        destination_title = str(command.get("MoveDestination", "")).strip()
        try:
            destination = await asyncio.get_running_loop().run_in_executor(
                self.executor, self.manage.get_remote_ae, destination_title
            )
        except NotFound:
            reply(status.MOVE_DESTINATION_UNKNOWN, f"{destination_title} is not a registered AE")
            return
        try:
            locations = await resolve_selection(association, message, self.retrieve, self.executor)
        except LightboxError as exc:
            reply(exc.dicom_status, exc.message)
            return
        if not locations:
            association.send(context_id, dimse.c_move_rsp(command, status.SUCCESS, None, 0, 0, 0))
            return
        try:
            target, link = await associate(
                destination.host,
                destination.port,
                self.settings,
                destination.ae_title,
                proposed_contexts(locations),
            )
        except (TimeoutError, OSError) as exc:
            log.warning("C-MOVE destination %s unreachable: %s", destination.ae_title, exc)
            reply(status.OUT_OF_RESOURCES_SUBOPERATIONS, f"cannot reach {destination.ae_title}")
            return
        try:
            tally = await self._sub_operations(association, message, target, locations)
        finally:
            await link.release()
        self.retrieve.retrieved(actor, tally.sent, destination=target.called_ae)
        final = tally.final_response(dimse.c_move_rsp, command, association.contexts[context_id][1])
        association.send(context_id, *final)

    async def _sub_operations(
        self,
        association: Association,
        message: Message,
        target: Association,
        locations: Sequence[InstanceLocation],
    ) -> SubOperations:
        command, context_id = message.command, message.context_id
        tally = SubOperations(len(locations))
        with self.cancellations.track(association, command) as cancelled:
            for i, location in enumerate(locations):
                if cancelled():
                    tally.cancelled = True
                    break
                prefetch_next(self.retrieve, self.executor, locations, i)
                tally.record(location, await self._store(association, message, target, location))
                if tally.remaining:
                    association.send(context_id, dimse.c_move_rsp(command, status.PENDING, *tally.counts()))
        return tally

    async def _store(
        self,
        association: Association,
        message: Message,
        target: Association,
        location: InstanceLocation,
    ) -> str:
        """One sub-operation: the status category of the destination's C-STORE-RSP ("failure" if none)."""
        chosen = choose_context(target.contexts, location.sop_class_uid, location.transfer_syntax_uid)
        if chosen is None:
            return "failure"  # the destination refused the contexts, or more than 128 pairs
        target_context, syntax = chosen
        try:
            data = await outgoing_data_set(self.retrieve, self.executor, location, syntax)
            rq = dimse.c_store_rq(
                target.new_message_id(),
                location.sop_class_uid,
                location.sop_instance_uid,
                move_originator_aet=association.calling_ae,
                move_originator_message_id=dimse.message_id(message.command),
            )
            rsp = await target.request(target_context, rq, data)
        except (ConnectionError, LightboxError) as exc:
            log.warning("C-MOVE sub-operation to %s failed: %s", target.called_ae, exc)
            return "failure"
        return status.category(int(rsp.get("Status", 0xC000)))
