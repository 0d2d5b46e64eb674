"""C-MOVE SCP on the retrieve service (PS3.4 C.4.2): C-STORE sub-operations to a registered destination.

The destination must be in the remote AE registry (a C-MOVE never sends to an address taken from the wire).
Lightbox opens its own association to it, proposing each stored SOP class in its stored transfer syntax,
sends every object as stored, and reports pending and final counts to the C-MOVE's requestor.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import Executor

from lightbox.dicomnet import dimse, status
from lightbox.dicomnet.association import AcceptorSettings, Association, Message, associate
from lightbox.dimse.get import SubOperations, stream_data_set
from lightbox.dimse.requests import Cancellations, resolve_selection
from lightbox.domain.errors import LightboxError, NotFound
from lightbox.index.base import InstanceLocation
from lightbox.services.manage import ManageService
from lightbox.services.retrieve import RetrieveService

log = logging.getLogger(__name__)

PATIENT_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
MOVE_MODELS = frozenset({PATIENT_ROOT_MOVE, STUDY_ROOT_MOVE})


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

    async def move(self, association: Association, message: Message) -> None:
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
        wanted = sorted({(loc.sop_class_uid, loc.transfer_syntax_uid) for loc in locations})
        contexts = [(sop_class, [syntax]) for sop_class, syntax in wanted[:128]]
        try:
            target, link = await associate(
                destination.host, destination.port, self.settings, destination.ae_title, contexts
            )
        except (TimeoutError, OSError) as exc:
            log.warning("C-MOVE destination %s unreachable: %s", destination.ae_title, exc)
            reply(status.OUT_OF_RESOURCES_SUBOPERATIONS, f"cannot reach {destination.ae_title}")
            return
        try:
            tally = await self._sub_operations(association, message, target, locations)
        finally:
            await link.release()
        self.retrieve.retrieved(f"dimse:{association.calling_ae}->{target.called_ae}", tally.sent)
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
        by_syntax = {syntaxes: cid for cid, syntaxes in target.contexts.items()}
        with self.cancellations.track(association, command) as cancelled:
            for location in locations:
                if cancelled():
                    tally.cancelled = True
                    break
                tally.record(location, await self._store(association, message, target, by_syntax, location))
                if tally.remaining:
                    association.send(context_id, dimse.c_move_rsp(command, status.PENDING, *tally.counts()))
        return tally

    async def _store(
        self,
        association: Association,
        message: Message,
        target: Association,
        by_syntax: dict[tuple[str, str], int],
        location: InstanceLocation,
    ) -> str:
        """One sub-operation: the status category of the destination's C-STORE-RSP ("failure" if none)."""
        target_context = by_syntax.get((location.sop_class_uid, location.transfer_syntax_uid))
        if target_context is None:
            return "failure"  # more than 128 SOP class / syntax pairs, or the destination refused the context
        rq = dimse.c_store_rq(
            target.new_message_id(),
            location.sop_class_uid,
            location.sop_instance_uid,
            move_originator_aet=association.calling_ae,
            move_originator_message_id=dimse.message_id(message.command),
        )
        try:
            rsp = await target.request(
                target_context, rq, stream_data_set(self.retrieve, self.executor, location)
            )
        except (ConnectionError, LightboxError) as exc:
            log.warning("C-MOVE sub-operation to %s failed: %s", target.called_ae, exc)
            return "failure"
        return status.category(int(rsp.get("Status", 0xC000)))
