"""Settings: precedence, nested environment variables, validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightbox.config import load_settings
from lightbox.domain.errors import ConfigurationError
from lightbox.index.base import DuplicatePolicy


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("LIGHTBOX_"):
            monkeypatch.delenv(name)


def test_embedded_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert (s.host, s.dicom_port, s.http_port, s.ae_title) == ("127.0.0.1", 11112, 8080, "LIGHTBOX")
    assert s.database_url == f"sqlite:///{tmp_path / 'lightbox-data' / 'index.db'}"
    assert s.storage_url == f"file://{tmp_path / 'lightbox-data' / 'objects'}"
    assert s.ingest.duplicate_policy is DuplicatePolicy.REPLACE


def test_precedence_flag_over_env_over_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.toml"
    config.write_text('http_port = 1000\ndicom_port = 1001\nae_title = "FILE"\n[ingest]\nworkers = 7\n')
    monkeypatch.setenv("LIGHTBOX_HTTP_PORT", "2000")
    monkeypatch.setenv("LIGHTBOX_DICOM_PORT", "2001")
    s = load_settings(config, http_port=3000)
    assert (s.http_port, s.dicom_port, s.ae_title, s.ingest.workers) == (3000, 2001, "FILE", 7)


def test_nested_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTBOX_DATABASE_URL", "postgresql://u:p@db/lightbox")
    monkeypatch.setenv("LIGHTBOX_INGEST_DUPLICATE_POLICY", "reject")
    monkeypatch.setenv("LIGHTBOX_STORAGE_URL", "file:///srv/objects")
    s = load_settings()
    assert s.database_url == "postgresql://u:p@db/lightbox"
    assert s.ingest.duplicate_policy is DuplicatePolicy.REJECT
    assert s.storage_url == "file:///srv/objects"


def test_object_storage_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTBOX_STORAGE_URL", "s3://pacs-objects/site-a")
    monkeypatch.setenv("LIGHTBOX_STORAGE_S3_ENDPOINT", "https://minio.example:9000")
    monkeypatch.setenv("LIGHTBOX_STORAGE_S3_SECRET_ACCESS_KEY", "s3cr3t")
    s = load_settings()
    assert s.storage_url == "s3://pacs-objects/site-a"
    assert s.storage.s3_endpoint == "https://minio.example:9000"
    assert s.storage.s3_secret_access_key is not None
    assert s.storage.s3_secret_access_key.get_secret_value() == "s3cr3t"
    assert "s3cr3t" not in repr(s)  # a secret never reaches a log line


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.toml"
    config.write_text('ae_title = "VIAENV"\n')
    monkeypatch.setenv("LIGHTBOX_CONFIG", str(config))
    assert load_settings().ae_title == "VIAENV"


@pytest.mark.parametrize(
    ("kwargs", "env", "fragment"),
    [
        ({"ae_title": "A" * 17}, {}, "ae_title"),
        ({"ae_title": "BAD\\AE"}, {}, "not a valid AE title"),
        ({"http_port": 70000}, {}, "http_port"),
        ({}, {"LIGHTBOX_DICOM_PORT": "eleven"}, "dicom_port"),
        ({}, {"LIGHTBOX_DATABASE_URL": "mysql://x"}, "database.url"),
        ({}, {"LIGHTBOX_INGEST_DUPLICATE_POLICY": "sometimes"}, "ingest.duplicate_policy"),
        ({}, {"LIGHTBOX_STORAGE_URL": "ftp://x"}, "storage.url"),
        ({}, {"LIGHTBOX_STORAGE_URL": "s3://Not_A_Bucket/x"}, "storage.url"),
        ({}, {"LIGHTBOX_STORAGE_S3_ENDPOINT": "minio:9000"}, "storage.s3_endpoint"),
        ({}, {"LIGHTBOX_STORAGE_S3_PART_SIZE_MIB": "1"}, "storage.s3_part_size_mib"),
        ({}, {"LIGHTBOX_STORAGE_LIFECYCLE": '[{"to": "cold", "older_than_days": 1}]'}, "no such tier"),
        ({}, {"LIGHTBOX_STORAGE_LIFECYCLE": '[{"to": "hot"}]'}, "older_than_days or not_accessed_days"),
        ({}, {"LIGHTBOX_STORAGE_TIERS": '{"Cold": "file:///x"}'}, "tier name"),
        ({}, {"LIGHTBOX_STORAGE_TIERS": '{"cold": "ftp://x"}'}, "file:// or s3://"),
        ({}, {"LIGHTBOX_WEB_VIEWER_DIR": "/nonexistent/viewer"}, "web.viewer_dir"),
    ],
)
def test_invalid_values_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, object], env: dict[str, str], fragment: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as info:
        load_settings(**kwargs)
    assert fragment in info.value.message


def test_unknown_setting_in_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("htp_port = 1\n")
    with pytest.raises(ConfigurationError) as info:
        load_settings(config)
    assert "htp_port" in info.value.message


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings(tmp_path / "nope.toml")
    assert "does not exist" in info.value.message


def test_viewer_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lightbox import config

    (tmp_path / "index.html").write_text("<!doctype html>")
    monkeypatch.setenv("LIGHTBOX_WEB_VIEWER_DIR", str(tmp_path))
    assert load_settings().web.viewer() == tmp_path
    monkeypatch.delenv("LIGHTBOX_WEB_VIEWER_DIR")
    monkeypatch.setattr(config, "INSTALLED_VIEWER", tmp_path)  # as make viewer installs it
    assert load_settings().web.viewer() == tmp_path
    monkeypatch.setattr(config, "INSTALLED_VIEWER", tmp_path / "not-installed")
    assert load_settings().web.viewer() is None
