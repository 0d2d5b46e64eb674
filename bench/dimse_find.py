"""C-FIND latency over DIMSE: the query benchmark's STUDY-level queries sent to ``lightbox serve``.

Two clients, each on one association that stays open for every query, as a viewer's would; a query's time
runs from sending the request until its final response has been read, every pending response (one per
match) included. The judged one is Lightbox's own requestor (``lightbox.dicomnet``: asyncio, no polling),
which counts the matches without decoding them: the time is the server's and the wire's. The second is
pynetdicom, which decodes each response in Python and whose reactor polls the socket every millisecond: a
Python client's share, shown beside it with its C-ECHO round trip. dcmtk's findscu repeating one query of
each kind on one association of its own is a third reference.

pynetdicom's association thread is kept paused while the queries run: it is meant to pause for each
request, but its handshake leaves a window in which it takes the first response off the queue as if it
were a request ("Received unexpected C-FIND service message"); the query then misses a match, or waits for
its final response until the DIMSE timeout. Against a server that answers within microseconds that window
is hit about once in a few hundred queries.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind, Verification
from tests.support.dcmtk import ENV, tool

from bench.query_bench import KINDS, RETURN_KEYS, KindResult, Query, summarize, time_queries
from lightbox.dicomnet import dimse
from lightbox.dicomnet.association import AcceptorSettings, associate

CLIENT_AE = "LIGHTBOXBENCH"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
PENDING = (0xFF00, 0xFF01)  # a match; 0xFF01: some optional keys not supported (PS3.4 C.4.1.1.4)
ECHOES = 100
FINDSCU_REPEATS = 20  # enough for a mean; the first name-prefix query may match hundreds of studies


class FindFailed(RuntimeError):
    """The association could not be set up or was lost."""


def _one(assoc: Association) -> Callable[[Dataset], int]:
    def one(identifier: Dataset) -> int:
        identifier.QueryRetrieveLevel = "STUDY"
        matches = 0
        for status, _ in assoc.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind):
            code = status.get("Status") if status else None
            if code in PENDING:
                matches += 1
            elif code is None:
                raise FindFailed("no response: the association was aborted or timed out")
            elif code != 0x0000:
                raise RuntimeError(f"C-FIND final status 0x{code:04X}: {status.get('ErrorComment', '')}")
        return matches

    return one


def _echo_round_trips(assoc: Association, n: int) -> dict[str, Any]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        status = assoc.send_c_echo()
        times.append((time.perf_counter() - start) * 1000.0)
        code = status.get("Status") if status else None
        if code != 0x0000:
            state = "established" if assoc.is_established else "aborted" if assoc.is_aborted else "released"
            raise FindFailed(f"C-ECHO {len(times)} of {n}: status {code}, association {state}")
    summary = summarize(times, [0] * n)
    return {k: summary[k] for k in ("queries", "median_ms", "p95_ms", "max_ms")}


class _StaysClear(threading.Event):
    """An event that ``set`` leaves clear: pynetdicom's send methods end by setting the reactor's."""

    def set(self) -> None:
        pass


@contextlib.contextmanager
def _reactor_paused(assoc: Association) -> Iterator[None]:
    """Hold pynetdicom's association thread (its ``_run_reactor`` loop) in its pause for the whole block.

    The thread waits on ``_reactor_checkpoint`` at the top of each loop; with an event that stays clear it
    stays there, and never takes a response meant for ``send_c_find``. Nothing in the block needs it: we
    are the requestor, and the send methods read their responses themselves."""
    original = assoc._reactor_checkpoint
    held = _StaysClear()
    assoc._reactor_checkpoint = held
    original.clear()
    # Running, the thread is paused only for an instant per millisecond; paused twice 5 ms apart, it is
    # waiting on the held event. Until then it can only find an empty queue: nothing has been sent yet.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(0.005)
        if assoc._is_paused:
            time.sleep(0.005)
            if assoc._is_paused:
                break
    try:
        yield
    finally:
        assoc._reactor_checkpoint = original
        original.set()
        threading.Event.set(held)  # wake the thread, which goes back to the original event


def run(
    port: int, called_ae: str, queries: list[Query], warmup: list[Query]
) -> tuple[dict[str, KindResult], dict[str, Any] | None]:
    """Warm up, time ``queries`` over one association, then time C-ECHOs on it; the kinds and the echoes."""
    ae = AE(ae_title=CLIENT_AE)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
    assoc = ae.associate("127.0.0.1", port, ae_title=called_ae)
    if not assoc.is_established:
        raise FindFailed(f"association to {called_ae} on port {port} was not established")
    try:
        # What TCP_NODELAY=1 does for dcmtk's tools: pynetdicom writes a request's command and data set
        # separately, and without it the second write waits for the server's delayed ACK (about 40 ms).
        assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with _reactor_paused(assoc):
            kinds = time_queries(_one(assoc), queries, warmup)
            echo = _echo_round_trips(assoc, ECHOES) if assoc.is_established else None
    finally:
        if assoc.is_established:
            assoc.release()
    return kinds, echo


def run_own_scu(
    port: int, called_ae: str, queries: list[Query], warmup: list[Query]
) -> dict[str, KindResult]:
    """Warm up, then time ``queries`` sent by Lightbox's requestor over one association (explicit VR
    little endian identifiers); its event loop runs in this thread, one query at a time."""
    find_uid = str(StudyRootQueryRetrieveInformationModelFind)
    loop = asyncio.new_event_loop()
    try:
        association, link = loop.run_until_complete(
            associate("127.0.0.1", port, AcceptorSettings(CLIENT_AE), called_ae, [(find_uid, [EXPLICIT_LE])])
        )
        if not association.contexts:
            raise FindFailed("the Study Root C-FIND context was not accepted")
        context_id = next(iter(association.contexts))

        async def find(identifier: Dataset) -> int:
            buffer = DicomBytesIO()
            buffer.is_little_endian, buffer.is_implicit_VR = True, False
            write_dataset(buffer, identifier)
            request = dimse.c_find_rq(association.new_message_id(), find_uid)
            matches = 0
            async for response, _ in association.request_all(context_id, request, buffer.getvalue()):
                code = int(response.get("Status", -1))
                if code in PENDING:
                    matches += 1
                elif code != 0x0000:
                    raise RuntimeError(
                        f"C-FIND final status 0x{code:04X}: {response.get('ErrorComment', '')}"
                    )
            return matches

        def one(identifier: Dataset) -> int:
            identifier.QueryRetrieveLevel = "STUDY"
            return loop.run_until_complete(find(identifier))

        kinds = time_queries(one, queries, warmup)
        loop.run_until_complete(link.release())
        return kinds
    finally:
        loop.close()


def _findscu(port: int, called_ae: str, query: Query, repeats: int) -> tuple[float, int]:
    """Seconds for one findscu process to send ``query`` ``repeats`` times on one association, and the
    number of matches it received in all."""
    keys = ["QueryRetrieveLevel=STUDY"]
    keys += [f"{k}={query.match[k]}" if k in query.match else k for k in RETURN_KEYS]
    command = [tool("findscu"), "-S", "-aet", CLIENT_AE, "-aec", called_ae, "--repeat", str(repeats)]
    command += [arg for key in keys for arg in ("-k", key)]
    start = time.perf_counter()
    done = subprocess.run([*command, "127.0.0.1", str(port)], env=ENV, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"findscu failed: {done.stderr[-500:]}")
    return elapsed, done.stderr.count("(Pending)")  # findscu logs each pending response it receives


def findscu_reference(port: int, called_ae: str, queries: list[Query], repeats: int) -> list[dict[str, Any]]:
    """Per kind, findscu's mean time per query for the kind's first (ASCII) query repeated ``repeats``
    times: the time of ``repeats + 1`` less that of one, so process start and association are left out."""
    rows = []
    ascii_only = [q for q in queries if all(v.isascii() for v in q.match.values())]
    for kind in KINDS:
        query = next((q for q in ascii_only if q.kind == kind), None)
        if query is None:
            continue
        once, _ = _findscu(port, called_ae, query, 1)
        total, matches = _findscu(port, called_ae, query, repeats + 1)
        per_query, odd = divmod(matches, repeats + 1)
        if odd or per_query not in query.expected:
            raise RuntimeError(f"findscu {kind}: {matches} matches over {repeats + 1} queries")
        mean_ms = (total - once) / repeats * 1000.0
        rows.append({"kind": kind, "repeats": repeats, "matches": per_query, "mean_ms": round(mean_ms, 3)})
    return rows
