"""``lightbox serve``: one asyncio event loop serving HTTP now, and DICOM and HL7 as they come."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import uvicorn

from lightbox.api.app import create_http_app
from lightbox.app import Archive
from lightbox.app import dicom_settings as archive_dicom_settings
from lightbox.dicomnet.association import serve_acceptor
from lightbox.dimse.identity import identifier
from lightbox.dimse.scp import ArchiveSCP
from lightbox.domain.accounts import parse_ae_permissions
from lightbox.domain.compression import Codec
from lightbox.services.compression import Compressor
from lightbox.services.lifecycle import Lifecycle
from lightbox.services.oidc import verifier_from_settings
from lightbox.tls import server_context

log = logging.getLogger(__name__)

# The event loop hands work to threads whose calls mostly wait on the disk, the index or the network. A
# thread back from such a call waits for the interpreter lock, up to this interval when another thread
# runs Python; the default 5 ms would be added to a C-STORE's answer many times over.
_SWITCH_INTERVAL_S = 0.0005


class _EmbeddedHttpServer(uvicorn.Server):
    """Signals belong to the process, not to one transport: ``serve`` stops every server on SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(archive: Archive) -> None:
    settings = archive.settings
    report = await asyncio.to_thread(archive.manage.recover)
    if report.failed:
        for key, reason in report.failed[:20]:
            log.error("stored object %s could not be indexed: %s", key, reason)
    executor = ThreadPoolExecutor(max_workers=settings.ingest.workers, thread_name_prefix="ingest")
    compressor = None
    if archive.compression.codec is not Codec.NONE:
        compressor = Compressor(archive.compression, housekeeping=archive.manage.finish_deletions)
        compressor.start()
    lifecycle = None
    if settings.storage.lifecycle or settings.storage.retention:
        interval = timedelta(minutes=settings.storage.lifecycle_interval_minutes)
        lifecycle = Lifecycle(archive.lifecycle, interval, housekeeping=archive.manage.finish_deletions)
        lifecycle.start()
    tls = settings.tls
    https: dict[str, Any] = {}
    if tls.certificate is not None and tls.private_key is not None:
        context = server_context(tls.certificate, tls.private_key)
        https = {"ssl_context_factory": lambda config, default: context}
    oidc = verifier_from_settings(settings.security)  # one key cache for HTTP and DICOM
    config = uvicorn.Config(
        create_http_app(archive, executor, oidc),
        host=settings.host,
        port=settings.http_port,
        log_level=settings.log_level.lower(),
        access_log=False,
        lifespan="on",
        **https,
    )
    http = _EmbeddedHttpServer(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    http_task = asyncio.create_task(http.serve(), name="http")
    dicom_settings = archive_dicom_settings(settings)
    scp = ArchiveSCP(
        settings.ae_title,
        archive.ingest,
        archive.query,
        archive.retrieve,
        archive.manage,
        dicom_settings,
        executor,
        transfer_syntaxes=settings.network.transfer_syntaxes,
        calling_ae_check=settings.network.calling_ae_check,
        unknown_ae_permissions=parse_ae_permissions(settings.network.unknown_ae_permissions),
        identify=identifier(archive.accounts, oidc),
        metrics=archive.metrics,
    )
    dicom = await serve_acceptor(dicom_settings, scp.connection, settings.host, settings.dicom_port)
    servers = [dicom]
    if tls.certificate is not None and tls.private_key is not None:
        dicom_tls = server_context(tls.certificate, tls.private_key, tls.client_ca)
        servers.append(
            await serve_acceptor(dicom_settings, scp.connection, settings.host, tls.dicom_port, dicom_tls)
        )
    _tune_garbage_collector()  # everything start-up builds exists now
    log.info(
        "Lightbox serving: HTTP on %s://%s:%d, DICOM on port %d%s as AE title %s, data in %s",
        "https" if tls.enabled else "http",
        settings.host,
        settings.http_port,
        settings.dicom_port,
        f" and over TLS on port {tls.dicom_port}" if tls.enabled else "",
        settings.ae_title,
        settings.data_dir.resolve(),
    )
    stop_task = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({http_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    http.should_exit = True
    for server in servers:
        server.close()
        await server.wait_closed()
    await http_task
    executor.shutdown(wait=True)  # stores in progress finish before the index closes
    if compressor is not None:
        compressor.close()
    if lifecycle is not None:
        lifecycle.close()
    stop_task.cancel()
    if http_task in done and http_task.exception():
        raise http_task.exception()  # type: ignore[misc]
    log.info("Lightbox stopped")


def _tune_garbage_collector() -> None:
    """A server keeps ~150,000 long-lived objects (modules, pydicom's dictionaries, the app); a full
    collection walked them all, 80-100 ms here, set off every few requests by the many short-lived dicts a
    series' metadata or a C-FIND makes. Freezing what start-up built takes it out of every collection, and
    a larger first threshold makes collections rarer; reference counting frees nearly everything anyway."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def run(archive: Archive) -> None:
    sys.setswitchinterval(_SWITCH_INTERVAL_S)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(serve(archive))
    else:
        uvloop.run(serve(archive))
