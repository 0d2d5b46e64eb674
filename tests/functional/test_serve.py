"""``lightbox serve`` as a real process: health, settings from flags, file and environment, clean stop."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.dicom import part10
from tests.support.server import lightbox_command, running_server


def test_health_and_clean_shutdown(tmp_path: Path) -> None:
    with running_server(tmp_path / "data") as server:
        status, body = server.get_json("/api/health")
        assert status == 200
        assert body["status"] == "ok"
        assert body["checks"] == {"index": "ok", "storage": "ok"}
        server.process.terminate()
        assert server.process.wait(timeout=20) == 0
    assert (tmp_path / "data" / "index.db").exists()
    assert "Lightbox stopped" in server.log()


def test_settings_from_toml_file_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "lightbox.toml"
    config.write_text('ae_title = "FROMFILE"\nlog_level = "DEBUG"\n')
    env = {"LIGHTBOX_AE_TITLE": "FROMENV"}
    with running_server(tmp_path / "data", "--config", str(config), env=env) as srv:
        assert "AE title FROMENV" in srv.log()  # the environment beats the file


def test_invalid_settings_fail_fast_with_a_clear_message(tmp_path: Path) -> None:
    result = subprocess.run(
        lightbox_command("serve", "--data-dir", str(tmp_path), "--ae-title", "WAY_TOO_LONG_AE_TITLE"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "ae_title" in result.stderr and "not a valid AE title" in result.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("http_port = [")
    result = subprocess.run(
        lightbox_command("serve", "--config", str(bad)), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "not valid TOML" in result.stderr


def test_object_left_unindexed_by_a_crash_is_indexed_at_start(tmp_path: Path) -> None:
    """Simulates the crash window: an object durable in storage whose index commit was lost."""
    from lightbox.app import build_archive
    from lightbox.config import load_settings
    from lightbox.storage import keys

    data = tmp_path / "data"
    archive = build_archive(load_settings(data_dir=data))
    archive.ingest.ingest([part10()], "t")
    archive.blobs.put(keys.new_key(), [part10()])
    archive.close()
    with running_server(data):
        pass
    archive = build_archive(load_settings(data_dir=data))
    assert archive.manage.statistics().instances == 2
    archive.close()


def test_ae_registry_cli(tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            lightbox_command(*args, "--data-dir", str(tmp_path)),
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ},
        )

    assert cli("ae", "list").stdout.strip() == "no remote AEs registered"
    added = cli("ae", "add", "STORESCP", "--host", "127.0.0.1", "--port", "11113", "--description", "peer")
    assert added.returncode == 0, added.stderr
    again = cli("ae", "add", "STORESCP", "--host", "127.0.0.1", "--port", "11113")
    assert again.returncode == 1 and "registered already" in again.stderr
    bad = cli("ae", "add", "BAD\\AE", "--host", "127.0.0.1", "--port", "104")
    assert bad.returncode == 1 and "not a valid AE title" in bad.stderr
    bad_port = cli("ae", "add", "OTHER", "--host", "127.0.0.1", "--port", "70000")
    assert bad_port.returncode == 1 and "out of range" in bad_port.stderr
    listed = cli("ae", "list").stdout
    assert "STORESCP" in listed and "127.0.0.1:11113" in listed and "peer" in listed
    assert cli("ae", "remove", "STORESCP").returncode == 0
    missing = cli("ae", "remove", "STORESCP")
    assert missing.returncode == 1 and "no remote AE" in missing.stderr


def test_reindex_cli_rebuilds_from_the_objects(tmp_path: Path) -> None:
    from lightbox.app import build_archive
    from lightbox.config import load_settings

    data = tmp_path / "data"
    archive = build_archive(load_settings(data_dir=data))
    for _ in range(3):
        archive.ingest.ingest([part10()], "t")
    before = archive.manage.statistics()
    archive.close()
    (data / "index.db").unlink()  # the index is lost; the objects are the source of truth
    for suffix in ("-wal", "-shm"):
        (data / f"index.db{suffix}").unlink(missing_ok=True)
    result = subprocess.run(
        lightbox_command("reindex", "--yes", "--data-dir", str(data)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "indexed 3 objects, 0 failed" in result.stdout
    archive = build_archive(load_settings(data_dir=data))
    assert archive.manage.statistics() == before
    archive.close()
