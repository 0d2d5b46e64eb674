"""``lightbox verify`` as a real process, on both index engines: a sound archive passes (exit 0), a damaged
and a missing object are named (exit 1), ``--repair`` restores them from the replica after which the archive
passes again, and without a replica they are reported as not repairable."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from lightbox.index.sql import SqlIndex
from lightbox.services.events import EventBus
from lightbox.services.ingest import IngestService
from lightbox.storage.base import BlobStore
from lightbox.storage.filesystem import FileSystemBlobStore
from lightbox.storage.replicated import ReplicatedBlobStore
from tests.support.dicom import part10
from tests.support.server import lightbox_command, server_environment


def _verify(
    data: Path, index: SqlIndex, *args: str, replica: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {"LIGHTBOX_DATABASE_URL": index.url}
    if replica is not None:
        env["LIGHTBOX_STORAGE_REPLICA_URL"] = f"file://{replica}"
    return subprocess.run(
        lightbox_command("verify", "--data-dir", str(data), *args),
        capture_output=True,
        text=True,
        timeout=120,
        env=server_environment(env),
    )


def _store(index: SqlIndex, blobs: BlobStore, count: int) -> list[str]:
    """The blob keys of ``count`` new instances."""
    ingest = IngestService(index, blobs, EventBus())
    stored = []
    for n in range(count):
        location = index.find_instance(ingest.ingest([part10(InstanceNumber=n)], "t").sop_instance_uid)
        assert location is not None
        stored.append(location.blob_key)
    ingest.close()
    return stored


def _damage(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_verify_and_repair_from_the_replica(tmp_path: Path, index: SqlIndex) -> None:
    data, replica = tmp_path / "data", tmp_path / "replica"
    primary = FileSystemBlobStore(data / "objects")
    damaged, missing, _ = _store(index, ReplicatedBlobStore(primary, FileSystemBlobStore(replica)), 3)

    sound = _verify(data, index, replica=replica)
    assert sound.returncode == 0, sound.stderr
    assert "verified 3 objects" in sound.stdout and "MB/s" in sound.stdout and "0 problems" in sound.stdout

    _damage(primary.root / damaged)
    (primary.root / missing).unlink()
    found = _verify(data, index, replica=replica)
    assert found.returncode == 1, found.stderr
    assert f"primary damaged: {damaged}" in found.stdout and f"primary missing: {missing}" in found.stdout
    assert "2 problems, 0 repaired, 2 left" in found.stdout

    repaired = _verify(data, index, "--repair", replica=replica)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert repaired.stdout.count("restored from the replica") == 2 and "2 repaired, 0 left" in repaired.stdout

    again = _verify(data, index, "--json", replica=replica)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["objects"] == 3 and report["problems"] == []
    assert report["bytes_read"] == 2 * index.statistics().size_bytes and report["seconds"] > 0
    assert (primary.root / damaged).read_bytes() == (replica / damaged).read_bytes()


def test_without_a_replica_damage_is_reported_as_not_repairable(tmp_path: Path, index: SqlIndex) -> None:
    data = tmp_path / "data"
    primary = FileSystemBlobStore(data / "objects")
    damaged, _ = _store(index, primary, 2)
    _damage(primary.root / damaged)
    result = _verify(data, index, "--repair", "--json")
    assert result.returncode == 1, result.stderr
    [problem] = json.loads(result.stdout)["problems"]
    assert problem["blob_key"] == damaged and problem["fault"] == "damaged" and not problem["repaired"]
    assert problem["repair"] == "not repairable: no replica (storage.replica_url)"
