"""The archive's SCP handler: C-ECHO, C-STORE on ingest, C-FIND on query (thin: no index, no blob paths).

C-STORE data set fragments are written to an ingest session as they arrive (on a worker thread, behind the
event loop); the C-STORE-RSP is sent after ``finish()``, which returns only once the object is durable and
indexed. Domain errors become DIMSE
statuses here, in one place.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from lightbox.dicomnet import dimse, pdu, status
from lightbox.dicomnet.association import AcceptorHandler, AcceptorSettings, Association, Message, Rejection
from lightbox.dimse.find import FIND_MODELS, FindSCP
from lightbox.dimse.get import GET_MODELS, GetSCP
from lightbox.dimse.move import MOVE_MODELS, MoveSCP
from lightbox.dimse.requests import Cancellations
from lightbox.dimse.sop_classes import (
    STORAGE_SOP_CLASSES,
    TRANSFER_SYNTAXES,
    VERIFICATION,
    VERIFICATION_PREFERENCE,
)
from lightbox.domain.accounts import AE_PERMISSIONS_OF_ROLE, AePermission, User
from lightbox.domain.actor import Actor
from lightbox.domain.errors import LightboxError, NotFound
from lightbox.index.base import RemoteAE
from lightbox.services.ingest import DatasetOnly, IngestService, read_early_header
from lightbox.services.manage import ManageService
from lightbox.services.query import QueryService
from lightbox.services.retrieve import RetrieveService
from lightbox.services.transcode import TARGETS as TRANSCODE_TARGETS
from lightbox.services.write_behind import WriteBehind

if TYPE_CHECKING:
    from lightbox.metrics import Metrics

log = logging.getLogger(__name__)


_VERIFIABLE = frozenset({2, 5})  # PS3.7 D.3.3.7: username and passcode; JSON Web Token
_QUERY_RETRIEVE = FIND_MODELS.keys() | GET_MODELS | MOVE_MODELS


class ArchiveSCP:
    """The archive's DICOM services, shared by every connection; ``connection()`` makes the handler of
    one, which knows what its calling AE may ask."""

    def __init__(
        self,
        ae_title: str,
        ingest: IngestService,
        query: QueryService,
        retrieve: RetrieveService,
        manage: ManageService,
        settings: AcceptorSettings,
        executor: Executor,
        *,
        transfer_syntaxes: Sequence[str] = (),
        calling_ae_check: str = "any",
        unknown_ae_permissions: frozenset[AePermission] = frozenset({AePermission.ECHO, AePermission.STORE}),
        identify: Callable[[pdu.UserIdentityRQ, Actor], User | None] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        """``identify``: the user a User Identity sub-item stands for (PS3.7 D.3.3.7), or None when its
        credentials are wrong; blocking (a password hash takes tens of ms). Unset: identities are ignored."""
        self.ae_title = ae_title
        self.metrics = metrics
        self.ingest = ingest
        self.manage = manage
        self.executor = executor
        self.preference = tuple(transfer_syntaxes)
        self.calling_ae_check = calling_ae_check
        self.unknown_ae_permissions = frozenset(unknown_ae_permissions)
        self.identify = identify
        self.cancellations = Cancellations()  # a C-CANCEL-RQ reaches whichever request it names
        self.finder = FindSCP(ae_title, query, executor, self.cancellations)
        self.getter = GetSCP(retrieve, executor, self.cancellations)
        self.mover = MoveSCP(settings, retrieve, manage, executor, self.cancellations)

    # --- negotiation -----------------------------------------------------------------------------------
    def connection(self) -> AcceptorHandler:
        """The handler of one connection: this SCP, with what the calling AE may do."""
        return _Connection(self)

    async def admit(
        self, request: pdu.AssociateRQ, peer: tuple[str, int]
    ) -> tuple[Rejection | None, frozenset[AePermission], User | None]:
        """Accept the association or say why not; what the calling AE may ask; the user its User Identity
        names. A registered AE may ask what it was registered with, another what unknown AEs may; a
        verified user adds what the user's role may (PS3.7 D.3.3.7), and wrong credentials reject."""
        if request.called_ae != self.ae_title:
            rejection = Rejection(pdu.RJ_PERMANENT, pdu.RJ_SOURCE_USER, pdu.RJ_CALLED_AE_NOT_RECOGNIZED)
            return rejection, frozenset(), None
        refused = Rejection(pdu.RJ_PERMANENT, pdu.RJ_SOURCE_USER, pdu.RJ_CALLING_AE_NOT_RECOGNIZED)
        user: User | None = None
        identity = request.user.user_identity
        if identity is not None and identity.type in _VERIFIABLE and self.identify is not None:
            loop = asyncio.get_running_loop()
            actor = Actor("dimse", ae_title=request.calling_ae, address=peer[0])
            user = await loop.run_in_executor(self.executor, self.identify, identity, actor)
            if user is None:
                log.warning("association from %s (%r) refused: wrong user identity", peer, request.calling_ae)
                return Rejection(pdu.RJ_PERMANENT, pdu.RJ_SOURCE_USER, pdu.RJ_NO_REASON), frozenset(), None
        granted = AE_PERMISSIONS_OF_ROLE[user.role] if user else frozenset()
        ae = await self._registered(request.calling_ae)
        if ae is None:
            if self.calling_ae_check == "any" and (self.unknown_ae_permissions or user):
                return None, self.unknown_ae_permissions | granted, user
            log.warning("association from %s refused: calling AE %r not registered", peer, request.calling_ae)
            return refused, frozenset(), None
        if self.calling_ae_check == "registered_host" and not await self._from_its_host(ae, peer[0]):
            log.warning("association from %s refused: %r is registered at %s", peer, ae.ae_title, ae.host)
            return refused, frozenset(), None
        return None, ae.permissions | granted, user

    async def _registered(self, calling_ae: str) -> RemoteAE | None:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.executor, self.manage.get_remote_ae, calling_ae)
        except NotFound:
            return None

    async def _from_its_host(self, ae: RemoteAE, address: str) -> bool:
        try:
            resolved = await asyncio.get_running_loop().getaddrinfo(ae.host, None)
        except OSError:
            return False
        return address in {info[4][0] for info in resolved}

    @staticmethod
    def permits(permissions: frozenset[AePermission], abstract_syntax: str, peer_scp_role: bool) -> bool:
        """Whether an AE with ``permissions`` may use a presentation context of ``abstract_syntax``. A
        storage context in which the peer takes the SCP role carries C-GET's sub-operations: get allows it.
        Syntaxes of no service here are not refused for it (``transfer_syntax`` refuses them)."""
        if abstract_syntax == VERIFICATION:
            return AePermission.ECHO in permissions
        if abstract_syntax in FIND_MODELS:
            return AePermission.FIND in permissions
        if abstract_syntax in GET_MODELS:
            return AePermission.GET in permissions
        if abstract_syntax in MOVE_MODELS:
            return AePermission.MOVE in permissions
        if abstract_syntax in STORAGE_SOP_CLASSES:
            return AePermission.STORE in permissions or (peer_scp_role and AePermission.GET in permissions)
        return True

    def transfer_syntax(
        self, abstract_syntax: str, offered: Sequence[str], peer_scp_role: bool
    ) -> str | None:
        if abstract_syntax == VERIFICATION or abstract_syntax in _QUERY_RETRIEVE:
            candidates = [ts for ts in VERIFICATION_PREFERENCE if ts in offered]
        elif abstract_syntax in STORAGE_SOP_CLASSES:
            # Stored as received: any transfer syntax the standard defines, in the sender's order.
            candidates = [ts for ts in offered if ts in TRANSFER_SYNTAXES]
            if peer_scp_role:
                # The peer will receive C-GET sub-operations here: every object can be sent in explicit or
                # implicit VR little endian (converted if need be), while a compressed syntax would fail
                # every object not stored in it (the archive does not compress).
                uncompressed = [ts for ts in TRANSCODE_TARGETS if ts in candidates]
                if uncompressed:
                    return uncompressed[0]
        else:
            return None
        preferred = next((ts for ts in self.preference if ts in candidates), None)
        return preferred or next(iter(candidates), None)

    def extended_negotiation(self, sop_class_uid: str, info: bytes) -> bytes | None:
        """PS3.4 C.5.1.1 / C.5.2.1 / C.5.3.1: each byte a feature the requestor asks for (1) or not (0)."""
        supported: tuple[int, ...]
        if sop_class_uid in FIND_MODELS:
            # relational queries, combined date-time matching, fuzzy person names: supported; timezone
            # query adjustment: not (yet)
            supported = (1, 1, 1, 0)
        elif sop_class_uid in GET_MODELS or sop_class_uid in MOVE_MODELS:
            supported = (1,)  # relational retrieval; not enhanced multi-frame conversion
        else:
            return None
        return bytes(min(asked, ok) for asked, ok in zip(info, supported, strict=False))

    # --- messages --------------------------------------------------------------------------------------
    def data_sink(
        self, association: Association, context_id: int, command: Any, actor: Actor
    ) -> WriteBehind | None:
        if dimse.command_field(command) != dimse.C_STORE_RQ:
            return None
        info = DatasetOnly(
            association.contexts[context_id][1],
            str(command.get("AffectedSOPClassUID", "")),
            str(command.get("AffectedSOPInstanceUID", "")),
            association.calling_ae,
        )
        return WriteBehind(
            lambda: self.ingest.begin(actor, dataset_only=info),
            self.executor,
            lambda head: read_early_header(head, info),
        )

    async def handle(self, association: Association, message: Message, actor: Actor) -> None:
        """``actor``: who asks (the calling AE, its address, the user it named), for the services' events."""
        field = dimse.command_field(message.command)
        if field == dimse.C_CANCEL_RQ:
            self.cancellations.cancel(association, message.command)
            return
        # Timed from the complete request (a C-STORE's data set has arrived) to the final response. The
        # outcome: the status category where the response is sent here, "completed" where the service sends
        # its own responses, "aborted" when the handler raised (the association is aborted).
        started, service, outcome = time.perf_counter(), "", "aborted"
        try:
            if field == dimse.C_ECHO_RQ:
                service = "C-ECHO"
                rsp = dimse.c_echo_rsp(dimse.message_id(message.command), status.SUCCESS)
                association.send(message.context_id, rsp)
                outcome = "success"
            elif field == dimse.C_STORE_RQ:
                service = "C-STORE"
                code, comment = await self._store(message)
                association.send(message.context_id, dimse.c_store_rsp(message.command, code, comment))
                outcome = status.category(code)
            elif field == dimse.C_FIND_RQ:
                service = "C-FIND"
                await self.finder.find(association, message, actor)
                outcome = "completed"
            elif field == dimse.C_GET_RQ:
                service = "C-GET"
                await self.getter.get(association, message, actor)
                outcome = "completed"
            elif field == dimse.C_MOVE_RQ:
                service = "C-MOVE"
                await self.mover.move(association, message, actor)
                outcome = "completed"
            else:
                raise dimse.DIMSEError(f"command 0x{field:04X} from {association.calling_ae} is not served")
        finally:
            if service and self.metrics is not None:
                self.metrics.observe_dimse(service, outcome, time.perf_counter() - started)

    async def _store(self, message: Message) -> tuple[int, str | None]:
        writer = message.sink
        assert isinstance(writer, WriteBehind)
        try:
            await asyncio.wrap_future(writer.complete())
        except LightboxError as exc:
            return exc.dicom_status, exc.message
        except Exception:
            log.exception("C-STORE failed")
            return status.PROCESSING_FAILURE, "internal error while storing"
        return status.SUCCESS, None


class _Connection:
    """One connection's handler: the archive's SCP, and what its calling AE may ask (found at ``check``)."""

    def __init__(self, scp: ArchiveSCP) -> None:
        self.scp = scp
        self.permissions: frozenset[AePermission] = frozenset()
        self.user: User | None = None  # the verified user of a User Identity negotiation

    async def check(self, request: pdu.AssociateRQ, peer: tuple[str, int]) -> Rejection | None:
        rejection, self.permissions, self.user = await self.scp.admit(request, peer)
        return rejection

    def identity_response(self) -> bytes | None:
        # PS3.7 D.3.3.7.2: a zero-length server response acknowledges a verified password or JWT
        return b"" if self.user is not None else None

    def permits(self, abstract_syntax: str, peer_scp_role: bool) -> bool:
        return self.scp.permits(self.permissions, abstract_syntax, peer_scp_role)

    def transfer_syntax(
        self, abstract_syntax: str, offered: Sequence[str], peer_scp_role: bool
    ) -> str | None:
        return self.scp.transfer_syntax(abstract_syntax, offered, peer_scp_role)

    def extended_negotiation(self, sop_class_uid: str, info: bytes) -> bytes | None:
        return self.scp.extended_negotiation(sop_class_uid, info)

    def data_sink(self, association: Association, context_id: int, command: Any) -> WriteBehind | None:
        return self.scp.data_sink(association, context_id, command, self.actor(association))

    async def handle(self, association: Association, message: Message) -> None:
        await self.scp.handle(association, message, self.actor(association))

    def actor(self, association: Association) -> Actor:
        user = self.user.name if self.user is not None else None
        return Actor("dimse", user=user, ae_title=association.calling_ae, address=association.peer[0])
