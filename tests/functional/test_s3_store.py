"""The S3 blob store against a real S3 endpoint (moto's server over HTTP): what the contract suite does not
reach: multipart uploads, the checksum kept with the object, errors mapped to the store's own, recovery."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from lightbox.storage import keys
from lightbox.storage.base import BlobNotFound, BlobStoreError
from lightbox.storage.s3 import SHA256_METADATA, S3BlobStore, S3Options
from tests.contract.test_blob_store import s3_store
from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server
from tests.support.server import free_port


def test_a_large_object_goes_up_in_parts_and_comes_back_identical(s3: S3Server, tmp_path: Path) -> None:
    store = s3_store(s3, tmp_path, part_size=5 << 20)
    data = os.urandom(12 * 1024 * 1024 + 3)
    key = keys.new_key()
    with store.writer(key) as writer:
        for i in range(0, len(data), 1 << 20):
            writer.write(data[i : i + (1 << 20)])
        info = writer.commit()
    assert info.size == len(data) and info.sha256 == hashlib.sha256(data).hexdigest()
    head = store.client.head_object(Bucket=store.bucket, Key=f"archive/{key}")
    assert head["ETag"].strip('"').endswith("-3")  # three parts: 5 + 5 + 2 MiB
    assert head["Metadata"][SHA256_METADATA] == info.sha256
    with store.open(key) as f:
        assert hashlib.sha256(f.read()).hexdigest() == info.sha256
    assert (
        b"".join(store.open_range(key, 5 * 1024 * 1024 - 2, 5 * 1024 * 1024 + 2))
        == data[5 * 1024 * 1024 - 2 : 5 * 1024 * 1024 + 2]
    )
    assert list(store.spool.iterdir()) == []  # the pending file is gone once uploaded


def test_keys_stay_under_the_prefix(s3: S3Server, tmp_path: Path) -> None:
    store = s3_store(s3, tmp_path)
    store.client.put_object(Bucket=store.bucket, Key="elsewhere/2025/01/01/00/x.dcm", Body=b"not ours")
    store.client.put_object(Bucket=store.bucket, Key="archive/notes.txt", Body=b"not a key")
    key = keys.new_key()
    store.put(key, [b"ours"])
    assert list(store.keys()) == [key]


def test_a_missing_bucket_is_a_store_error_not_a_missing_object(s3: S3Server, tmp_path: Path) -> None:
    store = _store(s3.endpoint, "no-such-bucket-here", tmp_path)
    with pytest.raises(BlobStoreError) as refused:
        store.check()
    assert "NoSuchBucket" in str(refused.value) or "404" in str(refused.value)
    with pytest.raises(BlobStoreError):
        store.put(keys.new_key(), [b"data"])
    assert list(store.spool.iterdir()) == []  # nothing left behind by the failed upload
    with pytest.raises(BlobStoreError):
        list(store.keys())


def test_an_unreachable_service_is_a_store_error(tmp_path: Path) -> None:
    store = _store(f"http://127.0.0.1:{free_port()}", "bucket", tmp_path)
    store.client.meta.config.retries = {"max_attempts": 1}
    with pytest.raises(BlobStoreError):
        store.check()
    with pytest.raises(BlobStoreError):
        store.open(keys.new_key())
    with pytest.raises(BlobStoreError):
        store.put(keys.new_key(), [b"data"])


def test_missing_objects_are_not_found(s3: S3Server, tmp_path: Path) -> None:
    store = s3_store(s3, tmp_path)
    key = keys.new_key()
    with pytest.raises(BlobNotFound):
        store.open(key)
    with pytest.raises(BlobNotFound):
        list(store.open_range(key, 10, 20))


def test_recover_removes_the_pending_files_of_dead_processes(s3: S3Server, tmp_path: Path) -> None:
    store = s3_store(s3, tmp_path)
    dead = store.spool / f"{os.uname().nodename}~999999999~x.part"
    dead.write_bytes(b"left by a crash")
    mine = store.writer(keys.new_key())
    mine.write(b"in progress")
    store.recover()
    assert not dead.exists()
    with mine.open_written() as f:
        assert f.read() == b"in progress"
    mine.abort()


def _store(endpoint: str, bucket: str, tmp_path: Path) -> S3BlobStore:
    options = S3Options(
        bucket=bucket,
        endpoint_url=endpoint,
        region=REGION,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
    )
    return S3BlobStore(options, spool=tmp_path / "pending")
