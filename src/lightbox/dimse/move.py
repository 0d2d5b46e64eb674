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
from lightbox.dimse.find import decode_identifier
from lightbox.dimse.get import SubOperations, selection, stream_data_set
from lightbox.domain.errors import LightboxError, NotFound
from lightbox.domain.levels import Level
from lightbox.index.base import InstanceLocation
from lightbox.services.manage import ManageService
from lightbox.services.retrieve import RetrieveService

log = logging.getLogger(__name__)

PATIENT_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
MOVE_MODELS = frozenset({PATIENT_ROOT_MOVE, STUDY_ROOT_MOVE})


class MoveSCP:
    def __init__(
        self, settings: AcceptorSettings, retrieve: RetrieveService, manage: ManageService, executor: Executor
    ) -> None:
        self.settings = settings
        self.retrieve = retrieve
        self.manage = manage
        self.executor = executor
        self._cancelled: dict[tuple[int, int], bool] = {}

    def cancel(self, association: Association, command: dimse.CommandFields) -> None:
        key = (id(association), int(command.get("MessageIDBeingRespondedTo") or 0))
        if key in self._cancelled:
            self._cancelled[key] = True

    async def move(self, association: Association, message: Message) -> None:
        command, context_id = message.command, message.context_id
        loop = asyncio.get_running_loop()

        def reply(code: int, comment: str | None = None) -> None:
            association.send(
                context_id, dimse.c_move_rsp(command, code, None, None, None, None, False, comment)
            )

        destination_title = str(command.get("MoveDestination", "")).strip()
        try:
            destination = await loop.run_in_executor(
                self.executor, self.manage.get_remote_ae, destination_title
            )
        except NotFound:
            reply(status.MOVE_DESTINATION_UNKNOWN, f"{destination_title} is not a registered AE"[:64])
            return
        try:
            identifier = decode_identifier(message.dataset or b"", association.contexts[context_id][1])
            level = Level(str(identifier.get("QueryRetrieveLevel", "")).strip())
            keys = selection(identifier, level)
            locations = await loop.run_in_executor(
                self.executor, lambda: list(self.retrieve.resolve(level, keys))
            )
        except LightboxError as exc:
            reply(exc.dicom_status, exc.message[:64])
            return
        except Exception as exc:  # an identifier that cannot be decoded, or no valid level
            reply(status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, str(exc)[:64])
            return
        if not locations:
            association.send(context_id, dimse.c_move_rsp(command, status.SUCCESS, None, 0, 0, 0, False))
            return
        wanted = sorted({(loc.sop_class_uid, loc.transfer_syntax_uid) for loc in locations})
        contexts = [(sop_class, [syntax]) for sop_class, syntax in wanted[:128]]
        try:
            target, link = await associate(
                destination.host, destination.port, self.settings, destination.ae_title, contexts
            )
        except (TimeoutError, OSError) as exc:
            log.warning("C-MOVE destination %s unreachable: %s", destination.ae_title, exc)
            reply(status.OUT_OF_RESOURCES_SUBOPERATIONS, f"cannot reach {destination.ae_title}"[:64])
            return
        key = (id(association), dimse.message_id(command))
        self._cancelled[key] = False
        try:
            await self._sub_operations(association, message, target, locations, key)
        finally:
            self._cancelled.pop(key, None)
            await link.release()

    async def _sub_operations(
        self,
        association: Association,
        message: Message,
        target: Association,
        locations: Sequence[InstanceLocation],
        key: tuple[int, int],
    ) -> None:
        command, context_id = message.command, message.context_id
        tally = SubOperations(len(locations))
        cancelled = False
        by_syntax = {syntaxes: cid for cid, syntaxes in target.contexts.items()}
        for location in locations:
            if self._cancelled.get(key):
                cancelled = True
                break
            outcome = "failure"
            target_context = by_syntax.get((location.sop_class_uid, location.transfer_syntax_uid))
            if target_context is not None:
                rq = dimse.c_store_rq(
                    target.new_message_id(),
                    location.sop_class_uid,
                    location.sop_instance_uid,
                    move_originator_aet=association.calling_ae,
                    move_originator_message_id=dimse.message_id(command),
                )
                try:
                    rsp = await target.request(
                        target_context, rq, stream_data_set(self.retrieve, self.executor, location)
                    )
                    outcome = status.category(int(rsp.get("Status", 0xC000)))
                except (ConnectionError, LightboxError) as exc:
                    log.warning("C-MOVE sub-operation to %s failed: %s", target.called_ae, exc)
            tally.record(location, outcome)
            if tally.remaining:
                association.send(
                    context_id, dimse.c_move_rsp(command, status.PENDING, *tally.counts(), False)
                )
        self.retrieve.retrieved(f"dimse:{association.calling_ae}->{target.called_ae}", tally.sent)
        identifier = tally.failed_list(association.contexts[context_id][1])
        remaining, completed, failed, warning = tally.counts()
        rsp = dimse.c_move_rsp(
            command,
            tally.final_status(cancelled),
            remaining if cancelled else None,
            completed,
            failed,
            warning,
            identifier is not None,
        )
        association.send(context_id, rsp, identifier)
