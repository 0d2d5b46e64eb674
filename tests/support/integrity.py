"""What a crash may not leave behind, checked on an archive at rest: every instance's object present with
its recorded checksum, and every stored object either an instance's or a recorded pending deletion."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from lightbox.app import build_archive
from lightbox.config import load_settings
from lightbox.index.models import instances


@dataclass
class Integrity:
    instances: dict[str, str] = field(default_factory=dict)  # SOP Instance UID -> transfer syntax
    missing: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.missing or self.damaged or self.orphans)


def check_archive(data_dir: Path, env: dict[str, str] | None = None) -> Integrity:
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        archive = build_archive(load_settings(data_dir=data_dir))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    report = Integrity()
    try:
        stmt = select(
            instances.c.sop_instance_uid,
            instances.c.blob_key,
            instances.c.sha256,
            instances.c.transfer_syntax_uid,
        )
        rows = archive.index.read(lambda conn: list(conn.execute(stmt)))  # type: ignore[attr-defined]
        indexed = set()
        for sop, key, sha256, syntax in rows:
            report.instances[sop] = syntax
            indexed.add(key)
            if not archive.blobs.exists(key):
                report.missing.append(sop)
                continue
            digest = hashlib.sha256()
            for chunk in archive.blobs.open_range(key, 0):
                digest.update(chunk)
            if digest.hexdigest() != sha256:
                report.damaged.append(sop)
        stored = list(archive.blobs.keys())
        pending = set(archive.index.pending_blob_deletions(len(stored) + 1, among=stored))
        report.orphans = [key for key in stored if key not in indexed and key not in pending]
    finally:
        archive.close()
    return report
