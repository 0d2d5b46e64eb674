"""Storage figures: lossless compression per codec (ratio, rate), CT import with compression on against off,
and the S3 blob store (moto's server over HTTP) against the filesystem one.

The compression targets: at least 2x less disk on the CT dataset, and an import rate with compression on of
at least half the rate with it off. "On" is measured two ways: the rate at which imports are acknowledged
while the background compressor runs beside them, and the rate at which objects reach their compressed
form (import plus compression, until nothing is left to compress), the stricter of the two.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, s3_server

from bench.archives import fresh_archive
from bench.dataset import warm_page_cache
from bench.ingest_bench import run_import
from lightbox.domain.compression import Codec
from lightbox.formats import lossless
from lightbox.services.compression import CompressionService, Compressor
from lightbox.storage import keys
from lightbox.storage.base import BlobStore
from lightbox.storage.filesystem import FileSystemBlobStore
from lightbox.storage.s3 import S3BlobStore, S3Options

CODEC_SAMPLE = 60  # CT images each codec encodes (and proves) in the codec table
S3_SAMPLE = 150  # CT objects written and read back through each blob store


def codec_figures(files: list[Path]) -> list[dict[str, Any]]:
    """Each codec on the same images: disk ratio, and encode-plus-proof rate on one thread."""
    sample = [path.read_bytes() for path in files[:CODEC_SAMPLE]]
    source = sum(len(data) for data in sample)
    rows = []
    for codec in (Codec.JPEG_LS, Codec.HTJ2K, Codec.J2K):
        wall, cpu = time.perf_counter(), time.process_time()
        compressed = sum(len(lossless.compress(data, codec)) for data in sample)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        rows.append(
            {
                "codec": codec.value,
                "images": len(sample),
                "ratio": round(source / compressed, 2),
                "images_per_s": round(len(sample) / wall, 1),
                "mb_per_s": round(source / 1e6 / wall, 1),
                "cpu_ms_per_image": round(cpu * 1000 / len(sample), 1),
            }
        )
    return rows


def compression_import(data_dir: Path, files: list[Path], source_bytes: int, workers: int) -> dict[str, Any]:
    """The CT import with compression off, then on (default codec, the server's background compressor)."""
    warm_page_cache(files)
    off_root = data_dir / "runs" / "ct-compress-off"
    archive = fresh_archive(off_root)
    try:
        off = run_import(archive, files, source_bytes, workers, "compression off")
    finally:
        archive.close()
    disk_off = _disk_bytes(off_root / "objects")
    shutil.rmtree(off_root, ignore_errors=True)

    on_root = data_dir / "runs" / "ct-compress-on"
    archive = fresh_archive(on_root)
    codec = Codec.JPEG_LS
    service = CompressionService(archive.index, archive.blobs, archive.ingest, codec)
    compressor = Compressor(service, housekeeping=None, idle_seconds=0.05)
    try:
        start = time.perf_counter()
        compressor.start()
        on = run_import(archive, files, source_bytes, workers, f"compression on ({codec.value})")
        while archive.index.compression_candidates(lossless.UNCOMPRESSED, 0, 1):
            time.sleep(0.05)
        settled = time.perf_counter() - start
        # The originals wait ten minutes for their readers as pending deletions: not counted as kept on disk
        stored = list(archive.blobs.keys())
        going = set(archive.index.pending_blob_deletions(len(stored) + 1, among=stored))
        disk_on = sum(archive.blobs.size(key) for key in stored if key not in going)
    finally:
        compressor.close()
        archive.close()
    shutil.rmtree(on_root, ignore_errors=True)
    total = compressor.total
    return {
        "codec": codec.value,
        "workers": workers,
        "instances": len(files),
        "off_per_s": round(off.rate, 1),
        "on_acknowledged_per_s": round(on.rate, 1),
        "on_compressed_per_s": round(len(files) / settled, 1),
        "compressed": total.compressed,
        "kept": total.kept,
        "disk_off_bytes": disk_off,
        "disk_on_bytes": disk_on,
        "disk_ratio": round(disk_off / disk_on, 2) if disk_on else None,
    }


def _disk_bytes(objects: Path) -> int:
    store = FileSystemBlobStore(objects)
    return sum(store.size(key) for key in store.keys())  # noqa: SIM118 - a blob store, not a dict


def blob_store_figures(files: list[Path]) -> list[dict[str, Any]]:
    """Write then read back the same CT objects through the filesystem store and the S3 one."""
    sample = [path.read_bytes() for path in files[:S3_SAMPLE]]
    rows = []
    with tempfile.TemporaryDirectory(prefix="lightbox-bench-") as scratch:
        root = Path(scratch)
        rows.append(_put_get("filesystem", FileSystemBlobStore(root / "objects"), sample))
        with s3_server(root) as server:
            client = server.client()
            client.create_bucket(Bucket="bench")  # type: ignore[attr-defined]
            options = S3Options(
                bucket="bench",
                prefix="archive",
                endpoint_url=server.endpoint,
                region=REGION,
                access_key_id=ACCESS_KEY,
                secret_access_key=SECRET_KEY,
            )
            rows.append(_put_get("s3 (moto server)", S3BlobStore(options, root / "pending"), sample))
    return rows


def _put_get(label: str, store: BlobStore, sample: list[bytes]) -> dict[str, Any]:
    size = sum(len(data) for data in sample)
    written = []
    start = time.perf_counter()
    for data in sample:
        key = keys.new_key()
        store.put(key, [data])
        written.append(key)
    put = time.perf_counter() - start
    start = time.perf_counter()
    for key in written:
        with store.open(key) as f:
            while f.read(1 << 20):
                pass
    get = time.perf_counter() - start
    return {
        "store": label,
        "objects": len(sample),
        "put_per_s": round(len(sample) / put, 1),
        "put_mb_per_s": round(size / 1e6 / put, 1),
        "get_per_s": round(len(sample) / get, 1),
        "get_mb_per_s": round(size / 1e6 / get, 1),
    }
