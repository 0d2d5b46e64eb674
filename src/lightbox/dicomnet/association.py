"""The acceptor side of a DICOM association on asyncio (PS3.8 9.2 state machine, Sta2 to Sta13).

One ``asyncio.BufferedProtocol`` per connection: the event loop's ``recv_into`` fills a preallocated
buffer, PDU headers are read with ``struct``, and P-DATA fragments go to the message being assembled
without copies of their own. No threads, queues or polling (DESIGN.md, performance habits). The
application is reached through ``AcceptorHandler``; this module knows nothing of the archive.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from ssl import SSLContext
from typing import Any, Protocol, cast

from lightbox.dicomnet import dimse, pdu, status

log = logging.getLogger(__name__)

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"  # PS3.7 A.2.1: the DICOM application context
# What a connection may hold unsent before a data set being streamed waits for the peer to read: the bound
# on memory per association when a peer reads slower than storage gives (asyncio's default, 64 kB, would
# make the sender wait between every two chunks read from storage)
_WRITE_HIGH_WATER = 1 << 20


async def _never_waits() -> None:
    return None


@dataclass(frozen=True)
class AcceptorSettings:
    ae_title: str
    max_pdu_length: int = 256 * 1024  # advertised: the biggest lever for throughput
    implementation_class_uid: str = ""
    implementation_version_name: str = ""
    artim_timeout: float = 30.0  # PS3.8 9.1.5: waiting for the A-ASSOCIATE-RQ or the close after a release
    idle_timeout: float = 300.0  # no PDU for this long ends the association with an A-ABORT
    max_associations: int = 64  # more at once are refused: transient, local limit exceeded (PS3.8 9.3.4)
    # Operations a peer may have outstanding at once when it negotiates an asynchronous operations window
    # (PS3.7 D.3.3.3); a peer that does not negotiate one gets the default, one at a time.
    max_async_operations: int = 16


class _Slots:
    """Associations in progress, shared by every connection of one server."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0


@dataclass(frozen=True)
class Rejection:
    result: int
    source: int
    reason: int


@dataclass
class Message:
    """A DIMSE message: its command fields and, when one follows, its data set bytes."""

    context_id: int
    command: Any
    dataset: bytes | None = None
    sink: DataSink | None = None  # when the handler streamed the data set, the sink that received it


class DataSink(Protocol):
    """Where a data set's fragments go as they arrive (C-STORE streams to storage, never into memory)."""

    def write(self, fragment: memoryview) -> None: ...

    def abort(self) -> None:
        """The association ended before the last fragment; nothing may remain."""


class AcceptorHandler(Protocol):
    """What the acceptor asks of the application."""

    def data_sink(self, association: Association, context_id: int, command: Any) -> DataSink | None:
        """A sink for the data set that follows ``command``, or None to receive it as bytes in the message."""

    async def check(self, request: pdu.AssociateRQ, peer: tuple[str, int]) -> Rejection | None:
        """None to accept the association, or why it is rejected (AE titles, limits). It may look things up
        (a registry of peers): the association waits for it, other connections do not."""

    def permits(self, abstract_syntax: str, peer_scp_role: bool) -> bool:
        """Whether this peer may use this abstract syntax (asked after ``check``); False refuses the context
        as a user rejection (PS3.8 9.3.3.2), whatever ``transfer_syntax`` would say."""

    def identity_response(self) -> bytes | None:
        """The server response of a User Identity negotiation the peer asked a positive response to
        (PS3.7 D.3.3.7.2), once ``check`` verified its identity; None to send none."""

    def transfer_syntax(
        self, abstract_syntax: str, offered: Sequence[str], peer_scp_role: bool
    ) -> str | None:
        """The transfer syntax to accept for this abstract syntax, or None to refuse the context.
        ``peer_scp_role``: the peer offers to act as SCP for this SOP class (it will receive C-STOREs)."""

    def extended_negotiation(self, sop_class_uid: str, info: bytes) -> bytes | None:
        """The reply to a SOP Class Extended Negotiation (PS3.7 D.3.3.5), or None to send none."""

    async def handle(self, association: Association, message: Message) -> None:
        """Serve one message; reply with ``association.send``."""


@dataclass
class Association:
    """An accepted association, for the handler: who the peer is, what was agreed, how to reply."""

    calling_ae: str
    called_ae: str
    peer: tuple[str, int]
    contexts: Mapping[int, tuple[str, str]]  # context id -> (abstract syntax, transfer syntax)
    peer_max_pdu_length: int
    send_bytes: Callable[[bytes], None] = field(repr=False)
    # Waits until what was sent is down to the transport's low-water mark (the peer's pace); raises
    # ConnectionError once the connection is gone
    drained: Callable[[], Awaitable[None]] = field(default=_never_waits, repr=False)
    # SOP classes for which the peer accepted to act as SCP on this association (PS3.7 D.3.3.4): it may be
    # sent C-STORE sub-operations of a C-GET.
    peer_scp_classes: frozenset[str] = frozenset()
    # SOP Class Extended Negotiation as agreed: our reply's application information, by SOP class
    extended: Mapping[str, bytes] = field(default_factory=dict)
    # The peer's user identity (PS3.7 D.3.3.7), as it came: checking it is the application's business
    user_identity: pdu.UserIdentityRQ | None = None
    # Operations the peer may invoke before it has the responses of earlier ones (PS3.7 D.3.3.3)
    max_operations_invoked: int = 1
    # Ends the association with an A-ABORT (a message broke off half-sent)
    on_broken: Callable[[str], None] = field(default=lambda why: None, repr=False)
    # Our requests awaiting their responses, by message ID: one response (a future) or several (a queue)
    _waiting: dict[int, asyncio.Future[Any] | asyncio.Queue[Any]] = field(default_factory=dict, repr=False)
    _next_message_id: int = field(default=1, repr=False)

    def send(self, context_id: int, command: Any, dataset: bytes | None = None) -> None:
        for chunk in pdu.fragment(context_id, True, dimse.encode_command(command), self.peer_max_pdu_length):
            self.send_bytes(chunk)
        if dataset is not None:
            for chunk in pdu.fragment(context_id, False, dataset, self.peer_max_pdu_length):
                self.send_bytes(chunk)

    def send_responses(self, context_id: int, command: Any, datasets: Sequence[bytes]) -> None:
        """The same response command with each data set in turn (C-FIND's pending matches), in one write:
        the command is encoded once, and a search's answer costs a system call a batch, not two a match."""
        head = b"".join(
            pdu.fragment(context_id, True, dimse.encode_command(command), self.peer_max_pdu_length)
        )
        chunks: list[bytes] = []
        for dataset in datasets:
            chunks.append(head)
            chunks.extend(pdu.fragment(context_id, False, dataset, self.peer_max_pdu_length))
        if chunks:
            self.send_bytes(b"".join(chunks))

    def new_message_id(self) -> int:
        message_id = self._next_message_id
        self._next_message_id = message_id % 0xFFFF + 1
        return message_id

    async def request(self, context_id: int, command: Any, data: AsyncIterator[bytes] | None = None) -> Any:
        """Send a request (its data set streamed from ``data``) and wait for the peer's response command.

        The first chunk is read before the command goes out, so a data set that cannot be read at all fails
        this request alone. A failure further on leaves half a data set on the wire, which PS3.8 has no way
        to take back: the association is aborted."""
        first: bytes | None = None
        if data is not None:
            first = await anext(data, b"")
        message_id = int(command["MessageID"])
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = future
        try:
            self.send(context_id, command)
            if data is not None:
                try:
                    await self._send_stream(context_id, first or b"", data)
                except Exception as exc:
                    self.on_broken(f"the data set of message {message_id} broke off: {exc}")
                    raise ConnectionError(f"the data set of message {message_id} broke off") from exc
            return await future
        finally:
            self._waiting.pop(message_id, None)

    async def _send_stream(self, context_id: int, first: bytes, data: AsyncIterator[bytes]) -> None:
        """The data set's chunks as P-DATA-TF PDUs, each chunk's in one write, at the peer's pace: a chunk is
        read only once the ones before are nearly all sent, so a slow peer never makes the object pile up
        in memory."""
        # The last flag needs to know which piece is last: hold one back.
        limit = self.peer_max_pdu_length - 6 if self.peer_max_pdu_length else 1 << 20
        previous: bytes | None = None

        async def chunks() -> AsyncIterator[bytes]:
            yield first
            async for chunk in data:
                yield chunk

        async for chunk in chunks():
            pdus = []
            for start in range(0, len(chunk), limit):
                if previous is not None:
                    pdus.append(pdu.encode_pdata(context_id, False, False, previous))
                previous = chunk[start : start + limit]
            if pdus:
                self.send_bytes(b"".join(pdus))
                await self.drained()
        self.send_bytes(pdu.encode_pdata(context_id, False, True, previous or b""))

    async def request_all(
        self, context_id: int, command: Any, dataset: bytes | None = None
    ) -> AsyncIterator[tuple[Any, bytes | None]]:
        """Send a request answered by several responses (C-FIND, C-GET, C-MOVE: pending ones, then the
        final one) and yield each response command with its data set, the final one last. Raises
        ConnectionError when the association ends first."""
        message_id = int(command["MessageID"])
        responses: asyncio.Queue[tuple[Any, bytes | None] | BaseException] = asyncio.Queue()
        self._waiting[message_id] = responses
        try:
            self.send(context_id, command, dataset)
            while True:
                response = await responses.get()
                if isinstance(response, BaseException):
                    raise response
                yield response
                if status.category(int(response[0].get("Status", 0))) != "pending":
                    return
        finally:
            self._waiting.pop(message_id, None)

    def deliver_response(self, command: Any, dataset: bytes | None = None) -> bool:
        """A response from the peer to one of our requests; False when nothing waits for it."""
        waiter = self._waiting.get(int(command.get("MessageIDBeingRespondedTo") or 0))
        if isinstance(waiter, asyncio.Queue):
            waiter.put_nowait((command, dataset))
            return True
        if waiter is None or waiter.done():
            return False
        waiter.set_result(command)
        return True

    def abandon(self) -> None:
        for waiter in self._waiting.values():
            if isinstance(waiter, asyncio.Queue):
                waiter.put_nowait(ConnectionError("the association ended"))
            elif not waiter.done():
                waiter.set_exception(ConnectionError("the association ended"))


class AcceptorProtocol(asyncio.BufferedProtocol):
    def __init__(
        self, settings: AcceptorSettings, handler: AcceptorHandler, slots: _Slots | None = None
    ) -> None:
        self.settings = settings
        self.handler = handler
        self._slots = slots
        self._holds_slot = False
        limit = settings.max_pdu_length + 6
        self._buf = bytearray(max(limit, 64 * 1024) * 2)
        self._view = memoryview(self._buf)
        self._filled = 0
        self._transport: asyncio.Transport | None = None
        self._association: Association | None = None
        self._released = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0  # when the timer fires
        self._deadline = 0.0  # when the timeout armed last expires: the timer may fire earlier
        self._loop: asyncio.AbstractEventLoop | None = None
        self._command_parts: dict[int, list[bytes]] = {}
        self._data_parts: dict[int, list[bytes]] = {}
        self._pending: dict[int, Message] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._window: asyncio.Semaphore | None = None
        self._negotiating = False
        self._writable = asyncio.Event()  # cleared while the transport holds more than its high-water mark
        self._writable.set()
        self.peer: tuple[str, int] = ("", 0)

    # --- transport events ------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self._transport = cast(asyncio.Transport, transport)
        self._transport.set_write_buffer_limits(high=_WRITE_HIGH_WATER)
        self._loop = asyncio.get_running_loop()  # kept: asking for it costs a system call (getpid)
        peer = transport.get_extra_info("peername") or ("", 0)
        self.peer = (str(peer[0]), int(peer[1]))
        self._arm(self.settings.artim_timeout)  # Sta2: ARTIM until the A-ASSOCIATE-RQ

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._holds_slot and self._slots is not None:
            self._slots.active -= 1
            self._holds_slot = False
        if self._association is not None:
            self._association.abandon()
        for message in self._pending.values():  # cut off mid-object: leave nothing half-written
            if message.sink is not None:
                message.sink.abort()
        self._pending.clear()
        for task in self._tasks:
            task.cancel()
        self._transport = None
        self._writable.set()  # a sender waiting for the peer to read learns the connection is gone

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    async def _drained(self) -> None:
        await self._writable.wait()
        if self._transport is None or self._transport.is_closing():
            raise ConnectionError("the connection closed while a data set was being sent")

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._filled == len(self._buf):  # a PDU larger than we advertised never fits: the parser aborts
            self._filled = 0
        return self._view[self._filled :]

    def buffer_updated(self, nbytes: int) -> None:
        self._filled += nbytes
        start = 0
        while self._filled - start >= 6 and self._transport is not None:
            try:
                pdu_type, length = pdu.parse_header(bytes(self._view[start : start + 6]))
            except pdu.PDUError as exc:
                self._abort(exc.reason, str(exc))
                return
            if length > self.settings.max_pdu_length + 64 or length + 6 > len(self._buf):
                self._abort(
                    pdu.ABORT_INVALID_PDU_PARAMETER_VALUE, f"PDU of {length} bytes exceeds the maximum"
                )
                return
            end = start + 6 + length
            if end > self._filled:
                break
            self._on_pdu(pdu_type, self._view[start + 6 : end])
            start = end
        if start:
            remaining = self._filled - start
            self._buf[:remaining] = self._buf[start : self._filled]
            self._filled = remaining

    # --- PDUs --------------------------------------------------------------------------------------------
    def _on_pdu(self, pdu_type: int, body: memoryview) -> None:
        try:
            if pdu_type == pdu.P_DATA_TF:
                if self._association is None:
                    raise pdu.PDUError("P-DATA-TF before the association", pdu.ABORT_UNEXPECTED_PDU)
                self._arm(self.settings.idle_timeout)
                self._on_pdata(body)
            elif pdu_type == pdu.A_ASSOCIATE_RQ:
                if self._association is not None or self._negotiating:
                    raise pdu.PDUError("a second A-ASSOCIATE-RQ", pdu.ABORT_UNEXPECTED_PDU)
                self._negotiating = True
                request = pdu.decode(pdu_type, body)
                task = asyncio.get_running_loop().create_task(self._negotiate(request))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            elif pdu_type == pdu.A_RELEASE_RQ:
                if self._association is None:
                    raise pdu.PDUError("A-RELEASE-RQ before the association", pdu.ABORT_UNEXPECTED_PDU)
                self._released = True
                self._write(pdu.encode(pdu.ReleaseRP()))
                self._arm(self.settings.artim_timeout)  # Sta13: wait for the peer to close
                assert self._transport is not None
                self._transport.close()
            elif pdu_type == pdu.A_ABORT:
                log.info("association from %s aborted by the peer", self.peer)
                self._close()
            else:
                raise pdu.PDUError(f"unexpected PDU type 0x{pdu_type:02X}", pdu.ABORT_UNEXPECTED_PDU)
        except pdu.PDUError as exc:
            self._abort(exc.reason, str(exc))
        except dimse.DIMSEError as exc:
            self._abort(pdu.ABORT_INVALID_PDU_PARAMETER_VALUE, f"malformed command set: {exc}")

    async def _negotiate(self, request: Any) -> None:
        try:
            rejection = await self.handler.check(request, self.peer)
        except Exception:
            log.exception("checking the association from %s failed", self.peer)
            rejection = Rejection(pdu.RJ_TRANSIENT, pdu.RJ_SOURCE_USER, pdu.RJ_NO_REASON)
        if self._transport is None:  # the peer went away meanwhile
            return
        try:
            self._on_associate(request, rejection)
        except pdu.PDUError as exc:
            self._abort(exc.reason, str(exc))

    def _on_associate(self, request: Any, rejection: Rejection | None) -> None:
        if rejection is None and self._slots is not None:
            if self._slots.active >= self._slots.limit:
                rejection = Rejection(
                    pdu.RJ_TRANSIENT, pdu.RJ_SOURCE_PRESENTATION, pdu.RJ_LOCAL_LIMIT_EXCEEDED
                )
            else:
                self._slots.active += 1
                self._holds_slot = True
        if request.application_context != APPLICATION_CONTEXT and rejection is None:
            rejection = Rejection(
                pdu.RJ_PERMANENT, pdu.RJ_SOURCE_USER, pdu.RJ_APPLICATION_CONTEXT_NOT_SUPPORTED
            )
        if rejection is not None:
            log.info("association from %s (%s) rejected: %s", self.peer, request.calling_ae, rejection)
            self._write(pdu.encode(pdu.AssociateRJ(rejection.result, rejection.source, rejection.reason)))
            self._close()
            return
        accepted: dict[int, tuple[str, str]] = {}
        results = []
        offered_scp = {r.sop_class_uid for r in request.user.role_selections if r.scp_role}
        for ctx in request.contexts:
            peer_scp = ctx.abstract_syntax in offered_scp
            if not self.handler.permits(ctx.abstract_syntax, peer_scp):
                results.append(_refused(ctx, pdu.CONTEXT_USER_REJECTION))
                continue
            chosen = self.handler.transfer_syntax(ctx.abstract_syntax, ctx.transfer_syntaxes, peer_scp)
            if chosen is None:
                results.append(_refused(ctx, pdu.CONTEXT_ABSTRACT_SYNTAX_NOT_SUPPORTED))
                continue
            accepted[ctx.context_id] = (ctx.abstract_syntax, chosen)
            results.append(pdu.PresentationContextAC(ctx.context_id, pdu.CONTEXT_ACCEPTANCE, chosen))
        accepted_classes = {abstract for abstract, _ in accepted.values()}
        # PS3.7 D.3.3.4: the peer may offer to be SCP (for C-GET's C-STORE sub-operations); we agree for the
        # classes we accepted, and keep the default SCU role as offered.
        roles = tuple(
            pdu.RoleSelection(r.sop_class_uid, r.scu_role, r.scp_role)
            for r in request.user.role_selections
            if r.sop_class_uid in accepted_classes
        )
        extended = {}
        for item in request.user.extended_negotiations:
            if item.sop_class_uid in accepted_classes:
                reply = self.handler.extended_negotiation(item.sop_class_uid, item.info)
                if reply is not None:
                    extended[item.sop_class_uid] = reply
        window = self._async_window(request.user.async_ops)
        identity = request.user.user_identity
        asked = identity is not None and identity.positive_response_requested
        user = pdu.UserInformation(
            max_pdu_length=self.settings.max_pdu_length,
            implementation_class_uid=self.settings.implementation_class_uid,
            implementation_version_name=self.settings.implementation_version_name or None,
            async_ops=window,
            role_selections=roles,
            extended_negotiations=tuple(pdu.ExtendedNegotiation(uid, info) for uid, info in extended.items()),
            user_identity_response=self.handler.identity_response() if asked else None,
        )
        self._write(
            pdu.encode(
                pdu.AssociateAC(
                    request.called_ae, request.calling_ae, APPLICATION_CONTEXT, tuple(results), user
                )
            )
        )
        self._association = Association(
            calling_ae=request.calling_ae,
            called_ae=request.called_ae,
            peer=self.peer,
            contexts=accepted,
            peer_max_pdu_length=request.user.max_pdu_length or 0,
            send_bytes=self._write,
            drained=self._drained,
            peer_scp_classes=frozenset(r.sop_class_uid for r in roles if r.scp_role),
            extended=extended,
            user_identity=request.user.user_identity,
            max_operations_invoked=window[1] if window else 1,
            on_broken=lambda why: self._abort(pdu.ABORT_NOT_SPECIFIED, why),
        )
        self._arm(self.settings.idle_timeout)

    def _async_window(self, asked: tuple[int, int] | None) -> tuple[int, int] | None:
        """PS3.7 D.3.3.3: our reply to an asynchronous operations window, or None when none was asked (then
        one operation at a time). Each side states how many operations it invokes and how many it performs
        at once: the peer's requests are bounded by what we perform (0 asks for no bound; ours applies).
        We invoke one at a time (C-GET sub-operations go one by one)."""
        if asked is None:
            return None
        invoked_by_peer, ours = asked[0], self.settings.max_async_operations
        return (1, ours if invoked_by_peer == 0 else min(invoked_by_peer, ours))

    def _on_pdata(self, body: memoryview) -> None:
        assert self._association is not None
        for context_id, control, fragment in pdu.iter_pdvs(body):
            if context_id not in self._association.contexts:
                raise pdu.PDUError(
                    f"P-DATA on presentation context {context_id}, which was not accepted",
                    pdu.ABORT_INVALID_PDU_PARAMETER_VALUE,
                )
            is_command, is_last = bool(control & 1), bool(control & 2)
            if is_command:
                parts = self._command_parts.setdefault(context_id, [])
                parts.append(bytes(fragment))
                if is_last:
                    command = dimse.decode_command(b"".join(self._command_parts.pop(context_id)))
                    if dimse.is_response(command) and not dimse.has_data_set(command):
                        if not self._association.deliver_response(command):
                            log.warning("unexpected response from %s", self.peer)
                        continue
                    if dimse.has_data_set(command):
                        sink = self.handler.data_sink(self._association, context_id, command)
                        self._pending[context_id] = Message(context_id, command, sink=sink)
                    else:
                        self._dispatch(Message(context_id, command))
            else:
                message = self._pending.get(context_id)
                if message is None:
                    raise pdu.PDUError("a data set fragment without its command", pdu.ABORT_UNEXPECTED_PDU)
                if message.sink is not None:
                    message.sink.write(fragment)
                else:
                    self._data_parts.setdefault(context_id, []).append(bytes(fragment))
                if is_last:
                    del self._pending[context_id]
                    if message.sink is None:
                        message.dataset = b"".join(self._data_parts.pop(context_id, []))
                    if dimse.is_response(message.command):  # a C-FIND match, a C-GET's failed list
                        if not self._association.deliver_response(message.command, message.dataset):
                            log.warning("unexpected response from %s", self.peer)
                        continue
                    self._dispatch(message)

    def _dispatch(self, message: Message) -> None:
        assert self._association is not None
        if self._window is None:
            self._window = asyncio.Semaphore(self._association.max_operations_invoked)
        assert self._loop is not None
        task = self._loop.create_task(self._serve(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, message: Message) -> None:
        assert self._association is not None and self._window is not None
        # Requests beyond the negotiated window wait their turn, in order; a C-CANCEL is no operation of
        # its own and must reach the operation it cancels at once.
        window = self._window if dimse.command_field(message.command) != dimse.C_CANCEL_RQ else None
        try:
            if window is not None:
                await window.acquire()
            try:
                await self.handler.handle(self._association, message)
            finally:
                if window is not None:
                    window.release()
        except (pdu.PDUError, dimse.DIMSEError) as exc:  # the peer's message was at fault, not the handler
            self._abort(getattr(exc, "reason", pdu.ABORT_UNEXPECTED_PDU_PARAMETER), str(exc))
        except Exception:
            log.exception("handler failed on a message from %s", self.peer)
            self._abort(pdu.ABORT_NOT_SPECIFIED, "handler failure")

    # --- helpers -----------------------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _abort(self, reason: int, why: str) -> None:
        log.warning("aborting association with %s: %s", self.peer, why)
        self._write(pdu.encode(pdu.Abort(pdu.ABORT_SOURCE_PROVIDER, reason)))
        self._close()

    def _close(self) -> None:
        self._disarm()
        if self._transport is not None:
            self._transport.close()

    def _arm(self, seconds: float) -> None:
        """Expire in ``seconds`` (ARTIM or idle). Re-armed on every P-DATA-TF: the timer in place is kept
        when it fires no later than the new deadline (it then waits on), which spares a timer per PDU."""
        loop = self._loop or asyncio.get_running_loop()
        self._deadline = loop.time() + seconds
        if self._timer is not None and self._timer_at <= self._deadline:
            return
        self._disarm()
        self._timer_at = self._deadline
        self._timer = loop.call_at(self._deadline, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        loop = self._loop or asyncio.get_running_loop()
        if loop.time() < self._deadline:  # re-armed since: wait for the new deadline
            self._timer_at = self._deadline
            self._timer = loop.call_at(self._deadline, self._expired)
            return
        if self._released or self._association is None:
            self._close()  # ARTIM: no request came, or the peer did not close after the release
        else:
            self._abort(pdu.ABORT_NOT_SPECIFIED, "idle timeout")


def _refused(ctx: pdu.PresentationContextRQ, result: int) -> pdu.PresentationContextAC:
    # PS3.8 9.3.3.2: the transfer syntax field is still sent, and ignored by the peer
    return pdu.PresentationContextAC(
        ctx.context_id, result, ctx.transfer_syntaxes[0] if ctx.transfer_syntaxes else ""
    )


async def serve_acceptor(
    settings: AcceptorSettings,
    handler_factory: Callable[[], AcceptorHandler],
    host: str,
    port: int,
    ssl: SSLContext | None = None,
) -> asyncio.Server:
    """Listen on ``host:port``; with ``ssl``, DICOM over TLS (PS3.15 B.1: the same protocol, in TLS)."""
    loop = asyncio.get_running_loop()
    slots = _Slots(settings.max_associations)
    return await loop.create_server(
        lambda: AcceptorProtocol(settings, handler_factory(), slots), host, port, ssl=ssl
    )


class AssociationRejected(ConnectionError):
    """The called AE refused the association (A-ASSOCIATE-RJ); the message says why, in words."""

    def __init__(self, rejection: pdu.AssociateRJ) -> None:
        lasting = "permanently" if rejection.result == pdu.RJ_PERMANENT else "for now"
        why = _REJECTION_REASONS.get((rejection.source, rejection.reason), "no reason given")
        super().__init__(f"association rejected {lasting}: {why}")
        self.rejection = rejection


# PS3.8 9.3.4: the reasons of an A-ASSOCIATE-RJ, by source and reason
_REJECTION_REASONS = {
    (pdu.RJ_SOURCE_USER, pdu.RJ_APPLICATION_CONTEXT_NOT_SUPPORTED): "application context not supported",
    (pdu.RJ_SOURCE_USER, pdu.RJ_CALLING_AE_NOT_RECOGNIZED): "calling AE title not recognized",
    (pdu.RJ_SOURCE_USER, pdu.RJ_CALLED_AE_NOT_RECOGNIZED): "called AE title not recognized",
    (pdu.RJ_SOURCE_ACSE, pdu.RJ_PROTOCOL_VERSION_NOT_SUPPORTED): "protocol version not supported",
    (pdu.RJ_SOURCE_PRESENTATION, pdu.RJ_TEMPORARY_CONGESTION): "temporary congestion",
    (pdu.RJ_SOURCE_PRESENTATION, pdu.RJ_LOCAL_LIMIT_EXCEEDED): "local limit exceeded",
}


class _RequestorHandler:
    """A requestor only receives responses, routed to its waiting requests; a request from the peer aborts."""

    async def check(self, request: pdu.AssociateRQ, peer: tuple[str, int]) -> Rejection | None:
        return Rejection(pdu.RJ_PERMANENT, pdu.RJ_SOURCE_USER, pdu.RJ_NO_REASON)

    def permits(self, abstract_syntax: str, peer_scp_role: bool) -> bool:
        return False

    def identity_response(self) -> bytes | None:
        return None

    def transfer_syntax(
        self, abstract_syntax: str, offered: Sequence[str], peer_scp_role: bool
    ) -> str | None:
        return None

    def extended_negotiation(self, sop_class_uid: str, info: bytes) -> bytes | None:
        return None

    def data_sink(self, association: Association, context_id: int, command: Any) -> DataSink | None:
        return None

    async def handle(self, association: Association, message: Message) -> None:
        raise pdu.PDUError("a request on an association we requested", pdu.ABORT_UNEXPECTED_PDU)


class RequestorProtocol(AcceptorProtocol):
    """The requestor side (PS3.8 9.2, Sta4/Sta5): sends the A-ASSOCIATE-RQ, then works like the acceptor."""

    def __init__(self, settings: AcceptorSettings, request: pdu.AssociateRQ) -> None:
        super().__init__(settings, _RequestorHandler())
        self.request = request
        loop = asyncio.get_running_loop()
        self.established: asyncio.Future[Association] = loop.create_future()
        self.released: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._write(pdu.encode(self.request))

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.established.done():
            self.established.set_exception(ConnectionError("the peer closed the connection"))
        if not self.released.done():
            self.released.set_result(None)

    def _on_pdu(self, pdu_type: int, body: memoryview) -> None:
        try:
            if pdu_type == pdu.A_ASSOCIATE_AC and self._association is None:
                self._on_accepted(pdu.decode(pdu_type, body))
            elif pdu_type == pdu.A_ASSOCIATE_RJ and self._association is None:
                rj = cast(pdu.AssociateRJ, pdu.decode(pdu_type, body))
                self.established.set_exception(AssociationRejected(rj))
                self._close()
            elif pdu_type == pdu.A_RELEASE_RP and self._association is not None:
                if not self.released.done():
                    self.released.set_result(None)
                self._close()
            elif pdu_type in (pdu.A_ASSOCIATE_RQ, pdu.A_ASSOCIATE_AC, pdu.A_ASSOCIATE_RJ):
                raise pdu.PDUError("unexpected association PDU", pdu.ABORT_UNEXPECTED_PDU)
            else:
                super()._on_pdu(pdu_type, body)
        except pdu.PDUError as exc:
            self._abort(exc.reason, str(exc))

    def _on_accepted(self, accept: Any) -> None:
        proposed = {c.context_id: c.abstract_syntax for c in self.request.contexts}
        contexts = {
            c.context_id: (proposed[c.context_id], c.transfer_syntax)
            for c in accept.contexts
            if c.result == pdu.CONTEXT_ACCEPTANCE and c.context_id in proposed
        }
        self._association = Association(
            calling_ae=self.request.calling_ae,
            called_ae=self.request.called_ae,
            peer=self.peer,
            contexts=contexts,
            peer_max_pdu_length=accept.user.max_pdu_length or 0,
            send_bytes=self._write,
            drained=self._drained,
            on_broken=lambda why: self._abort(pdu.ABORT_NOT_SPECIFIED, why),
        )
        self._arm(self.settings.idle_timeout)
        self.established.set_result(self._association)

    async def release(self, timeout: float = 30.0) -> None:
        """A-RELEASE-RQ, then wait for the A-RELEASE-RP (or the close)."""
        self._write(pdu.encode(pdu.ReleaseRQ()))
        try:
            await asyncio.wait_for(asyncio.shield(self.released), timeout)
        finally:
            self._close()


async def associate(
    host: str,
    port: int,
    settings: AcceptorSettings,
    called_ae: str,
    contexts: Sequence[tuple[str, Sequence[str]]],
    timeout: float = 30.0,
    async_operations: int | None = None,
) -> tuple[Association, RequestorProtocol]:
    """Open an association to ``called_ae`` at ``host:port`` proposing ``contexts`` (abstract syntax and
    transfer syntaxes each); raises AssociationRejected or ConnectionError.

    ``async_operations`` asks for a window of that many outstanding requests (PS3.7 D.3.3.3); by default
    none is asked for, as some peers mishandle the item."""
    if not 0 < len(contexts) <= 128:
        raise ValueError("an association proposes 1 to 128 presentation contexts (PS3.8 9.3.2.2)")
    request = pdu.AssociateRQ(
        called_ae,
        settings.ae_title,
        APPLICATION_CONTEXT,
        tuple(
            pdu.PresentationContextRQ(2 * i + 1, abstract, tuple(syntaxes))
            for i, (abstract, syntaxes) in enumerate(contexts)
        ),
        pdu.UserInformation(
            max_pdu_length=settings.max_pdu_length,
            implementation_class_uid=settings.implementation_class_uid,
            implementation_version_name=settings.implementation_version_name or None,
            async_ops=(async_operations, 1) if async_operations is not None else None,
        ),
    )
    loop = asyncio.get_running_loop()
    _, protocol = await asyncio.wait_for(
        loop.create_connection(lambda: RequestorProtocol(settings, request), host, port), timeout
    )
    association = await asyncio.wait_for(protocol.established, timeout)
    return association, protocol
