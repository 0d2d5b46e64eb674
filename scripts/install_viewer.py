#!/usr/bin/env python3
"""Install the diagnostic viewer: OHIF Viewer 3 (MIT), the prebuilt ``dist`` of its npm package ``@ohif/app``.

Run by the Makefile with the project's Python. It fetches the package with the npm client (``npm pack``),
checks the tarball against the integrity string pinned here, extracts ``package/dist``, trims what Lightbox
does not use, writes gzip and brotli siblings of the text assets for precompressed serving, and records what
it installed in a stamp file. Nothing of it goes into git. Only the brotli copies need more than the
standard library (the ``brotli`` package, a dependency of Lightbox): without it the script writes gzip
copies alone.

Idempotent: with the stamp of the pinned version in place it does nothing. Atomic: it builds the folder
beside the destination and renames it into place, so a failure leaves the previous install (or none).

    .venv/bin/python scripts/install_viewer.py [DEST] [--optional]

``--optional`` (for ``make serve``): a failure, such as npm missing, is a warning and the exit status 0; the
archive then runs without the viewer.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

try:
    import brotli
except ImportError:  # the system Python: gzip copies only
    brotli = None

PACKAGE = "@ohif/app"
VERSION = "3.13.2"
# The npm registry's integrity of @ohif/app-3.13.2.tgz (SHA-512, base64), checked before anything is extracted
INTEGRITY = "sha512-WZdxmpmG7rqFgW9ZJLcbgr3XCtLi1KDNPoMaeY5PPe6j4G4fjEjjkycZM6C6Zk2F87BKxFfpq+jd5xXZB9E8EA=="

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEST = ROOT / "build" / "viewer"
STAMP = ".installed"
DIST = "package/dist/"

# Not used by Lightbox, each checked against the bundles: nothing loaded at start refers to them.
TRIMMED = (
    "ort",  # onnxruntime-web (136 MB): AI segmentation tools, loaded lazily by one chunk only when used
    "dicom-microscopy-viewer",  # 20 MB: the microscopy mode loads it on demand
    "sw.js",  # no service worker: Lightbox's own cache headers do its work
    "init-service-worker.js",
    "_headers",  # Netlify and `serve` settings of OHIF's own deployments
    "_redirects",
    "serve.json",
    "silent-refresh.html",  # OpenID Connect in the viewer: Lightbox logs people in itself
    "oidc-client.min.js",  # (the viewer bundles the client it would use)
    "google.js",  # OHIF's demo configuration for Google Cloud Healthcare
    "app-config.js",  # OHIF's demo configuration: Lightbox serves its own at /app-config.js
)
# index.html loads the service worker's loader; it goes with the loader
SERVICE_WORKER_TAG = '<script rel="preload" as="script" type="module" src="/init-service-worker.js"></script>'
COMPRESSED_SUFFIXES = (".js", ".css", ".html", ".json", ".jsonc", ".svg", ".wasm", ".txt", ".xml", ".webapp")
MIN_COMPRESSED_SIZE = 1024  # what the server's on-the-fly gzip leaves alone too
# Brotli's best: its largest window too (16 MB), as the 17 MB main bundle gains from it. Written once at
# install, read on every first visit: 2.4 MB on the wire for that bundle instead of gzip's 3.3 MB.
BROTLI_OPTIONS = {"quality": 11, "lgwin": 24}


class InstallError(Exception):
    """Why the viewer could not be installed, in one line."""


def encodings() -> tuple[str, ...]:
    """The precompressed copies this run writes: an install without brotli is redone once it is there."""
    return ("gzip", "br") if brotli is not None else ("gzip",)


def stamp_text() -> str:
    return f"{PACKAGE}@{VERSION}\n{INTEGRITY}\n{' '.join(encodings())}\n"


def installed(dest: Path) -> bool:
    try:
        return (dest / STAMP).read_text() == stamp_text()
    except OSError:
        return False


def integrity_of(path: Path) -> str:
    digest = hashlib.sha512()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def npm_pack(workdir: Path) -> Path:
    """The package's tarball, fetched by the npm client into ``workdir``."""
    npm = shutil.which("npm")
    if npm is None:
        raise InstallError("the viewer needs npm: apt-get install npm")
    command = [npm, "pack", f"{PACKAGE}@{VERSION}", "--ignore-scripts", "--silent", "--pack-destination", "."]
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)
    tarballs = sorted(workdir.glob("*.tgz"))
    if done.returncode != 0 or len(tarballs) != 1:
        why = (done.stderr.strip().splitlines() or ["no tarball"])[-1]
        raise InstallError(f"npm pack {PACKAGE}@{VERSION} failed: {why}")
    return tarballs[0]


def extract_dist(tarball: Path, into: Path) -> None:
    """``package/dist`` of the tarball into ``into``: regular files and folders only, none outside it."""
    with tarfile.open(tarball, "r:gz") as tar:
        members = []
        for member in tar.getmembers():
            if not member.name.startswith(DIST) or not (member.isfile() or member.isdir()):
                continue
            name = member.name[len(DIST) :]
            parts = name.split("/")
            if not name or name.startswith("/") or ".." in parts:
                raise InstallError(f"unexpected path in the package: {member.name}")
            member.name = name
            members.append(member)
        if not members:
            raise InstallError(f"the package has no {DIST}")
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, members=members, filter="data")
        else:  # Python before 3.11.4: the checks above are the filter
            tar.extractall(into, members=members)


def size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def trim(dist: Path) -> None:
    for name in TRIMMED:
        path = dist / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    for source_map in dist.rglob("*.map"):
        source_map.unlink()
    index = dist / "index.html"
    page = index.read_text(encoding="utf-8")
    if SERVICE_WORKER_TAG not in page:
        raise InstallError("index.html does not load init-service-worker.js as expected: check the trimming")
    index.write_text(page.replace(SERVICE_WORKER_TAG, ""), encoding="utf-8")


def precompress(dist: Path) -> None:
    """A ``.gz`` sibling (best compression, no timestamp) and a ``.br`` one of each text asset, each where
    it makes the file smaller; files on a thread per core (both compressors release the GIL), largest
    first, so that the main bundle does not start last."""
    paths = [p for p in dist.rglob("*") if p.is_file() and p.suffix in COMPRESSED_SUFFIXES]
    paths = [p for p in paths if p.stat().st_size >= MIN_COMPRESSED_SIZE]
    paths.sort(key=lambda p: p.stat().st_size, reverse=True)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(_compress, paths))  # raises the first failure


def _compress(path: Path) -> None:
    data = path.read_bytes()
    copies = [(".gz", gzip.compress(data, compresslevel=9, mtime=0))]
    if brotli is not None:
        copies.append((".br", brotli.compress(data, **BROTLI_OPTIONS)))
    for suffix, packed in copies:
        if len(packed) < len(data):
            path.with_name(path.name + suffix).write_bytes(packed)


def install(dest: Path, tarball: Path | None = None, integrity: str = INTEGRITY) -> tuple[int, int]:
    """Install into ``dest`` (from ``tarball`` instead of npm's); the sizes before and after trimming."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".viewer-", dir=dest.parent))
    try:
        tarball = tarball or npm_pack(work)
        found = integrity_of(tarball)
        if found != integrity:
            raise InstallError(f"{tarball.name}: integrity {found} is not the pinned {integrity}")
        dist = work / "dist"
        extract_dist(tarball, dist)
        before = size_of(dist)
        trim(dist)
        after = size_of(dist)
        licence = _licence(tarball)
        if licence is not None:
            (dist / "LICENSE").write_bytes(licence)  # MIT: the notice goes with the copy
        precompress(dist)
        (dist / STAMP).write_text(stamp_text())
        _touch(dist)
        old = work / "old"
        if dest.exists():
            os.rename(dest, old)
        try:
            os.rename(dist, dest)
        except OSError:
            if old.exists():
                os.rename(old, dest)  # the previous install stays
            raise
        return before, after
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _touch(dist: Path) -> None:
    """Date every file now: npm dates them all 1985, and the server's ETag (modification time and size) would
    be the same for a new version's index.html of the same size, so browsers would keep the old one."""
    now = time.time()
    for path in dist.rglob("*"):
        os.utime(path, (now, now))


def _licence(tarball: Path) -> bytes | None:
    with tarfile.open(tarball, "r:gz") as tar:
        try:
            member = tar.extractfile("package/LICENSE")
        except KeyError:
            return None
        return member.read() if member else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=f"Install the viewer ({PACKAGE} {VERSION}, prebuilt).")
    parser.add_argument("dest", nargs="?", type=Path, default=DEFAULT_DEST, help="where (build/viewer)")
    parser.add_argument("--optional", action="store_true", help="on failure warn and exit 0")
    args = parser.parse_args(argv)
    dest: Path = args.dest
    if installed(dest):
        os.utime(dest / STAMP)  # up to date: so make's stamp is too
        return 0
    started = time.perf_counter()
    try:
        before, after = install(dest)
    except (InstallError, OSError, tarfile.TarError) as exc:
        if args.optional:
            print(f"warning: {exc}; the archive runs without the viewer", file=sys.stderr)
            return 0
        print(f"error: {exc}", file=sys.stderr)
        return 1
    mb = 1024 * 1024
    total = size_of(dest)
    print(
        f"viewer: {PACKAGE} {VERSION} installed in {dest}: {before / mb:.0f} MB trimmed to "
        f"{after / mb:.1f} MB, {total / mb:.1f} MB on disk with the {' and '.join(encodings())} copies "
        f"(in {time.perf_counter() - started:.0f} s)"
    )
    if brotli is None:
        print("viewer: no brotli copies (no brotli package in this Python); the browsers get gzip")
    return 0


if __name__ == "__main__":
    sys.exit(main())
