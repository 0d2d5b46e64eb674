"""Which backup ``--at`` names, and one backup at a time into a folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightbox.domain.errors import Conflict, InvalidQuery, NotFound
from lightbox.services.backup_layout import choose_backup, list_backups, locked, manifest_path

NAMES = ["20261120T020000Z", "20261121T020000Z", "20261122T020000Z"]


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    for name in NAMES:
        manifest_path(tmp_path, name).write_text("{}")
    (tmp_path / "manifest-20261123T020000Z.json.partial").write_text("{")  # an interrupted one
    return tmp_path


def test_only_complete_backups_are_listed_oldest_first(dest: Path) -> None:
    assert list_backups(dest) == NAMES
    assert list_backups(dest / "absent") == []


@pytest.mark.parametrize(
    ("at", "chosen"),
    [
        (None, NAMES[-1]),
        (NAMES[0], NAMES[0]),
        ("2026-11-21T02:00:00Z", NAMES[1]),  # taken at that moment
        ("2026-11-21T23:59", NAMES[1]),  # the last one taken by then (UTC without an offset)
        ("2026-11-22T03:00:00+02:00", NAMES[1]),  # 01:00 UTC
        ("2030-01-01", NAMES[-1]),
    ],
)
def test_at_names_a_backup_or_a_time(dest: Path, at: str | None, chosen: str) -> None:
    assert choose_backup(dest, at) == chosen


def test_at_that_matches_nothing(dest: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no backup 20261119T020000Z"):
        choose_backup(dest, "20261119T020000Z")
    with pytest.raises(NotFound, match="at or before 2026-11-01"):
        choose_backup(dest, "2026-11-01")
    with pytest.raises(InvalidQuery, match="neither a backup name"):
        choose_backup(dest, "last tuesday")
    with pytest.raises(NotFound, match="holds no backup"):
        choose_backup(tmp_path / "empty", None)


def test_one_backup_at_a_time_into_a_folder(tmp_path: Path) -> None:
    with locked(tmp_path), pytest.raises(Conflict, match="another backup is writing"), locked(tmp_path):
        pass
    with locked(tmp_path):  # free again once the first is done
        pass
