"""S3 BlobStore: objects in a bucket of an S3-compatible service (AWS S3, MinIO, Ceph RGW...) through boto3.

A write goes to a local pending file first (the ingest reads the header back before commit, and an upload
needs its length); ``commit`` uploads it (multipart above the part size, through boto3's transfer manager)
and returns once the service has answered: S3 acknowledges a PUT only once the object is stored durably.
Reads stream: ``open`` is a seekable reader that asks for a range only when the position jumps, and
``open_range`` streams one ranged GET. The SHA-256 the archive computed travels as the object's metadata.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lightbox.storage import keys
from lightbox.storage.base import BlobInfo, BlobNotFound, BlobStore, BlobStoreError, BlobWriter
from lightbox.storage.pending import PendingFileWriter, remove_abandoned

_CHUNK = 1 << 20
_READ_BUFFER = 1 << 20
# What S3 and compatible services answer for a missing object (GET says NoSuchKey, HEAD only its status)
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
SHA256_METADATA = "sha256"


@dataclass(frozen=True, slots=True)
class S3Options:
    """Where the bucket is and how to reach it; credentials None: boto3's usual chain (AWS_* variables,
    ~/.aws, an instance role)."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    part_size: int = 16 << 20
    connections: int = 16


@contextlib.contextmanager
def _s3_errors(key: str) -> Iterator[None]:
    """The service's and the client's errors as the blob store's own."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in _MISSING:
            raise BlobNotFound(key) from None
        raise BlobStoreError(
            0, f"object storage refused {key or 'the request'}: {code} {error.get('Message', '')}".rstrip()
        ) from exc
    except (BotoCoreError, S3UploadFailedError) as exc:
        raise BlobStoreError(0, f"object storage failed for {key or 'the request'}: {exc}") from exc


class S3Writer(PendingFileWriter):
    def __init__(self, store: S3BlobStore, key: str) -> None:
        super().__init__(key, store.spool)
        self._store = store

    def commit(self) -> BlobInfo:
        self._check_open()
        try:
            self._file.close()
            self._store.upload(self._pending, self.key, self.sha256)
        finally:
            self.abort()  # the pending file goes, uploaded or not
        return BlobInfo(self.key, self._size, self.sha256)


class _ObjectReader(io.RawIOBase):
    """An object as a seekable stream: reading on from where the last GET stands costs no new request;
    a seek elsewhere opens a ranged GET at the next read."""

    def __init__(self, store: S3BlobStore, key: str, body: Any, size: int) -> None:
        self._store = store
        self._key = key
        self._body: Any = body
        self._size = size
        self._position = 0

    @property
    def name(self) -> str:
        # Readers such as pydicom's take a buffered file's name for the file they read
        return f"s3://{self._store.bucket}/{self._store.prefix}{self._key}"

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._position >= self._size:
            return 0
        with _s3_errors(self._key):
            if self._body is None:
                self._body = self._store.get(self._key, self._position)["Body"]
            data = self._body.read(len(buffer))
        if not data:
            raise BlobStoreError(0, f"object storage ended {self._key} early at byte {self._position}")
        view = memoryview(buffer).cast("B")
        view[: len(data)] = data
        self._position += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        target = base + offset
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        if target != self._position:
            self._drop_body()
            self._position = target
        return target

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        self._drop_body()
        super().close()

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None


class S3BlobStore(BlobStore):
    def __init__(self, options: S3Options, spool: Path) -> None:
        self.options = options
        self.bucket = options.bucket
        self.prefix = options.prefix.strip("/") + "/" if options.prefix.strip("/") else ""
        self.spool = spool
        self.spool.mkdir(parents=True, exist_ok=True)
        config = Config(
            retries={"mode": "standard", "max_attempts": 5},
            max_pool_connections=options.connections,
            connect_timeout=10,
            read_timeout=60,
            # A service of one's own (MinIO, Ceph) rarely has a DNS name per bucket
            s3={"addressing_style": "path" if options.endpoint_url else "auto"},
        )
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=options.endpoint_url,
            region_name=options.region,
            aws_access_key_id=options.access_key_id,
            aws_secret_access_key=options.secret_access_key,
            config=config,
        )
        self._transfer = TransferConfig(
            multipart_threshold=options.part_size, multipart_chunksize=options.part_size, max_concurrency=4
        )

    def _name(self, key: str) -> str:
        if not keys.is_valid_key(key):
            raise ValueError(f"invalid blob key {key!r}")
        return self.prefix + key

    def writer(self, key: str) -> BlobWriter:
        self._name(key)  # validates the key before anything is written
        return S3Writer(self, key)

    def upload(self, path: Path, key: str, sha256: str) -> None:
        """Upload a pending file; returns once the service has stored it."""
        with _s3_errors(key):
            self.client.upload_file(
                str(path),
                self.bucket,
                self._name(key),
                ExtraArgs={"Metadata": {SHA256_METADATA: sha256}},
                Config=self._transfer,
            )

    def get(self, key: str, start: int = 0, end: int | None = None) -> dict[str, Any]:
        """The GET answer of bytes ``start`` to ``end`` (exclusive); raises ClientError."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._name(key)}
        if start or end is not None:
            args["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        answer: dict[str, Any] = self.client.get_object(**args)
        return answer

    def open(self, key: str) -> BinaryIO:
        name = self._name(key)
        with _s3_errors(key):
            answer = self.client.get_object(Bucket=self.bucket, Key=name)
        raw = _ObjectReader(self, key, answer["Body"], int(answer["ContentLength"]))
        return io.BufferedReader(raw, buffer_size=_READ_BUFFER)

    def open_range(self, key: str, start: int, end: int | None = None) -> Iterator[bytes]:
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"invalid byte range {start}-{end}")
        self._name(key)
        size = None
        if end == start or start > 0:
            size = self.size(key)  # an empty range, or one past the end, is not a GET S3 accepts
            if end == start or start >= size:
                return
        with _s3_errors(key):
            body = self.get(key, start, None if end is None or (size is not None and end >= size) else end)[
                "Body"
            ]
            try:
                yield from body.iter_chunks(_CHUNK)
            finally:
                body.close()

    def delete(self, key: str) -> None:
        name = self._name(key)
        with _s3_errors(key):
            self.client.delete_object(Bucket=self.bucket, Key=name)  # a missing key is no error in S3

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except BlobNotFound:
            return False
        return True

    def size(self, key: str) -> int:
        name = self._name(key)
        with _s3_errors(key):
            return int(self.client.head_object(Bucket=self.bucket, Key=name)["ContentLength"])

    def keys(self, prefix: str = "") -> Iterator[str]:
        # S3 lists keys in the lexical order of their UTF-8 bytes: the order the archive's keys sort in
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        with _s3_errors(prefix):
            for page in pages:
                for item in page.get("Contents", ()):
                    key = item["Key"][len(self.prefix) :]
                    if keys.is_valid_key(key):
                        yield key

    def recover(self) -> None:
        remove_abandoned(self.spool)

    def check(self) -> None:
        try:
            with _s3_errors(""):
                self.client.head_bucket(Bucket=self.bucket)
        except BlobNotFound:  # HEAD answers a bare 404
            raise BlobStoreError(0, f"object storage: no bucket {self.bucket!r} (NoSuchBucket)") from None
        if not os.access(self.spool, os.W_OK):
            raise BlobStoreError(0, f"pending-file folder {self.spool} is not writable")
