"""Verification of a remote AE: a C-ECHO from the archive (PS3.4 A.4, PS3.7 9.1.5), as an administrator
checks that a C-MOVE destination or a modality can be reached before relying on it.

The association is opened as a C-MOVE opens one to its destination (``associate`` with the archive's own
DICOM settings), proposing the Verification SOP class alone. Whatever goes wrong (no such host, nothing
listening, a rejected association, no answer in time) is an answer that says so, not an error: it is what
the administrator asked to find out.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass

from lightbox.dicomnet import dimse, status
from lightbox.dicomnet.association import (
    AcceptorSettings,
    AssociationRejected,
    RequestorProtocol,
    associate,
)
from lightbox.dicomnet.dimse import VERIFICATION_SOP_CLASS as VERIFICATION
from lightbox.index.base import RemoteAE

ECHO_TIMEOUT = 5.0  # seconds for the whole exchange: connect, associate, C-ECHO
_RELEASE_TIMEOUT = 2.0
# PS3.5 10.1: implicit VR little endian is the default every AE supports; explicit VR for those that prefer it
_SYNTAXES = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")


@dataclass(frozen=True, slots=True)
class EchoResult:
    ok: bool
    status: int | None  # the C-ECHO-RSP's status; None when no response came
    milliseconds: float  # from the connection's start to the answer (or the failure)
    error: str | None = None


class EchoService:
    def __init__(self, settings: AcceptorSettings, timeout: float = ECHO_TIMEOUT) -> None:
        self.settings = settings
        self.timeout = timeout

    async def echo(self, ae: RemoteAE) -> EchoResult:
        started = time.perf_counter()
        answered: float | None = None  # the time of the answer, before the release

        def answer(code: int | None, error: str | None = None) -> EchoResult:
            elapsed = round(((answered or time.perf_counter()) - started) * 1000, 1)
            return EchoResult(error is None, code, elapsed, error)

        where = f"{ae.ae_title} at {ae.host}:{ae.port}"
        link: RequestorProtocol | None = None
        try:
            async with asyncio.timeout(self.timeout):
                association, link = await associate(
                    ae.host, ae.port, self.settings, ae.ae_title, [(VERIFICATION, _SYNTAXES)]
                )
                if not association.contexts:
                    return answer(
                        None, f"{where} accepted the association but not the Verification SOP class"
                    )
                context_id = next(iter(association.contexts))
                rsp = await association.request(context_id, dimse.c_echo_rq(association.new_message_id()))
                answered, code = time.perf_counter(), int(rsp.get("Status", status.PROCESSING_FAILURE))
        except TimeoutError:
            return answer(None, f"no answer from {where} within {self.timeout:g} seconds")
        except AssociationRejected as exc:
            return answer(None, f"{where}: {exc}")
        except OSError as exc:  # refused, reset or closed by the peer; an unknown host name; no route
            return answer(None, f"cannot reach {where}: {_reason(exc)}")
        finally:
            if link is not None:  # out of the timeout: a late release does not make a success a failure
                with contextlib.suppress(TimeoutError, ConnectionError):
                    await link.release(_RELEASE_TIMEOUT)
        if status.category(code) != "success":
            return answer(code, f"{where} answered the C-ECHO with status 0x{code:04X}")
        return answer(code)


def _reason(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens on that port, or a firewall refuses)"
    if isinstance(exc, socket.gaierror):
        return f"unknown host name ({exc.strerror})"
    return exc.strerror or str(exc)
