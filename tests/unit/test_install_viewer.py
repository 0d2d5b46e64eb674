"""The viewer's installer (scripts/install_viewer.py) on a small tarball laid out like OHIF's package:
integrity, trimming, precompression, the stamp, and a failure that leaves the previous install alone."""

from __future__ import annotations

import gzip
import importlib.util
import io
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import brotli
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install_viewer.py"
BUNDLE = b"window.viewer = 1;\n" * 200


def _installer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("install_viewer", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["install_viewer"] = module
    spec.loader.exec_module(module)
    return module


iv = _installer()


def _tarball(path: Path, extra: dict[str, bytes] | None = None) -> Path:
    index = f"<html><head>{iv.SERVICE_WORKER_TAG}<script src='/app.bundle.0123456789abcdef.js'></script>"
    files = {
        "package/LICENSE": b"MIT License\n",
        "package/package.json": b"{}",
        "package/dist/index.html": index.encode(),
        "package/dist/app.bundle.0123456789abcdef.js": BUNDLE,
        "package/dist/app.bundle.0123456789abcdef.js.map": b"{}",
        "package/dist/app-config.js": b"window.config = {demo: true};",
        "package/dist/sw.js": b"self.x = 1;",
        "package/dist/init-service-worker.js": b"navigator.serviceWorker;",
        "package/dist/ort/ort-wasm.wasm": b"\0asm" * 1000,
        "package/dist/dicom-microscopy-viewer/dicomMicroscopyViewer.min.js": b"x",
        "package/dist/assets/favicon.ico": b"\0\0\1\0",
        **(extra or {}),
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_install_trims_compresses_and_stamps(tmp_path: Path) -> None:
    tarball = _tarball(tmp_path / "ohif.tgz")
    dest = tmp_path / "build" / "viewer"
    before, after = iv.install(dest, tarball, iv.integrity_of(tarball))
    assert after < before
    names = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert names == {
        ".installed",
        "LICENSE",
        "index.html",
        "app.bundle.0123456789abcdef.js",
        "app.bundle.0123456789abcdef.js.gz",
        "app.bundle.0123456789abcdef.js.br",
        "assets/favicon.ico",  # too small to be worth compressing, and an image
    }
    assert gzip.decompress((dest / "app.bundle.0123456789abcdef.js.gz").read_bytes()) == BUNDLE
    assert brotli.decompress((dest / "app.bundle.0123456789abcdef.js.br").read_bytes()) == BUNDLE
    assert "init-service-worker" not in (dest / "index.html").read_text()
    assert (dest / "LICENSE").read_bytes() == b"MIT License\n"
    assert iv.installed(dest)
    assert (dest / ".installed").read_text().endswith("\ngzip br\n")
    assert [p.name for p in dest.parent.iterdir()] == ["viewer"]  # no work folder left behind


def test_without_brotli_gzip_only_and_installed_again_once_brotli_is_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tarball = _tarball(tmp_path / "ohif.tgz")
    dest = tmp_path / "viewer"
    monkeypatch.setattr(iv, "brotli", None)  # the system Python
    iv.install(dest, tarball, iv.integrity_of(tarball))
    assert iv.installed(dest)
    assert (dest / "app.bundle.0123456789abcdef.js.gz").is_file()
    assert not list(dest.glob("*.br"))
    monkeypatch.undo()
    assert not iv.installed(dest)  # the stamp says gzip only: make viewer installs it again, with brotli


def test_a_second_run_does_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tarball = _tarball(tmp_path / "ohif.tgz")
    dest = tmp_path / "viewer"
    monkeypatch.setattr(iv, "INTEGRITY", iv.integrity_of(tarball))
    iv.install(dest, tarball, iv.INTEGRITY)

    def fetch(workdir: Path) -> Path:
        raise AssertionError("installed already: nothing to fetch")

    monkeypatch.setattr(iv, "npm_pack", fetch)
    assert iv.main([str(dest)]) == 0


def test_a_wrong_tarball_leaves_the_install_as_it_was(tmp_path: Path) -> None:
    good = _tarball(tmp_path / "good.tgz")
    dest = tmp_path / "viewer"
    iv.install(dest, good, iv.integrity_of(good))
    other = _tarball(tmp_path / "other.tgz", {"package/dist/extra.js": b"changed"})
    with pytest.raises(iv.InstallError, match="integrity"):
        iv.install(dest, other, iv.integrity_of(good))
    hostile = _tarball(tmp_path / "hostile.tgz", {"package/dist/../../escaped.js": b"x"})
    with pytest.raises(iv.InstallError, match="unexpected path"):
        iv.install(dest, hostile, iv.integrity_of(hostile))
    assert not (tmp_path / "escaped.js").exists()
    assert iv.installed(dest) and (dest / "app.bundle.0123456789abcdef.js").read_bytes() == BUNDLE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.tgz", "hostile.tgz", "other.tgz", "viewer"]


def test_without_npm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    dest = tmp_path / "viewer"
    assert iv.main([str(dest)]) == 1
    assert capsys.readouterr().err == "error: the viewer needs npm: apt-get install npm\n"
    assert iv.main([str(dest), "--optional"]) == 0  # make serve goes on without the viewer
    assert "the viewer needs npm" in capsys.readouterr().err
    assert not dest.exists()
