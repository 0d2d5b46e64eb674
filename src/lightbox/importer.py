"""``lightbox import``: files, folders and DICOMDIR media into the archive through the ingest service.

The import runs in two phases. The scan walks the paths in a deterministic order (sorted names, depth first),
reads each DICOMDIR it meets and lists every file once, so that the progress bar has a total. The import then
hands the files to ``IngestService.ingest_file`` on a pool of threads with a bounded number of files in
flight; each file streams in chunks. Every file that is not stored is reported with its reason; nothing a
single file does (not DICOM, unreadable, malformed) ends the run.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO, TypeVar

import pydicom
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from lightbox.domain.errors import LightboxError, OutOfResources
from lightbox.index.base import StoreOutcome
from lightbox.services.ingest import IngestService

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# PS3.10 8.6: the directory file of a File-set is always called DICOMDIR.
DICOMDIR_NAME = "DICOMDIR"
# ISO 9660 media may show a version suffix (";1") or a trailing dot that the File ID does not have.
_ISO_SUFFIX = re.compile(r"\.?(;\d+)?$")
# Enough queued work to keep every thread busy without holding a future per file.
_IN_FLIGHT_PER_WORKER = 2


@dataclass
class ImportSummary:
    """What one import did. ``rejected`` lists every file that was not stored, with the reason."""

    stored: int = 0
    already_present: int = 0
    replaced: int = 0
    kept_existing: int = 0
    rejected: list[tuple[Path, str]] = field(default_factory=list)
    ingest_rejected: int = 0  # the part of ``rejected`` that the ingest service refused (not the scan)
    bytes_read: int = 0  # size of every file given to the ingest service, stored or not
    elapsed: float = 0.0  # seconds, scan included
    dicomdirs: int = 0  # DICOMDIR files read (their records are imported, the files themselves are not)
    not_imported: int = 0  # files found but never given to the ingest service (interrupted or stopped)
    interrupted: bool = False
    stopped_reason: str | None = None  # the archive could not store any more (disk full, database down)

    @property
    def accepted(self) -> int:
        return self.stored + self.already_present + self.replaced + self.kept_existing

    @property
    def files(self) -> int:
        """Files given to the ingest service."""
        return self.accepted + self.ingest_rejected


# --- scan --------------------------------------------------------------------------------------------------
@dataclass
class ScanResult:
    files: list[tuple[str, int]] = field(default_factory=list)  # (path, size); str keeps 1M entries small
    rejected: list[tuple[Path, str]] = field(default_factory=list)
    dicomdirs: int = 0


def scan(paths: Iterable[Path], on_found: Callable[[int], None] | None = None) -> ScanResult:
    """Every file to import under ``paths``, each once, in a deterministic order.

    A folder that holds a DICOMDIR contributes the files its records reference first (in record order), then
    everything else in it. A DICOMDIR named on its own contributes its referenced files only.
    """
    scanner = _Scanner(on_found)
    for path in paths:
        scanner.add(path)
    return scanner.result


def is_dicomdir_name(name: str) -> bool:
    return _normalize(name) == DICOMDIR_NAME


def _normalize(name: str) -> str:
    return _ISO_SUFFIX.sub("", name).upper()


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


class _Scanner:
    """Lists each file once, by (device, inode): links, overlapping paths and DICOMDIR references dedupe."""

    def __init__(self, on_found: Callable[[int], None] | None) -> None:
        self.result = ScanResult()
        self._seen_files: set[object] = set()
        self._seen_dirs: set[object] = set()
        self._on_found = on_found
        self._listings: dict[str, dict[str, str]] = {}  # folder -> normalized name -> actual name

    def add(self, path: Path) -> None:
        try:
            st = path.stat()
        except OSError as exc:
            self._reject(path, f"cannot read: {_reason(exc)}")
            return
        if stat.S_ISDIR(st.st_mode):
            self._walk(path)
        elif not stat.S_ISREG(st.st_mode):
            self._reject(path, "not a regular file or folder")
        elif is_dicomdir_name(path.name):
            self._read_dicomdir(path, st)
        else:
            self._add_file(path, st)

    def _walk(self, root: Path) -> None:
        stack = [root]
        while stack:
            folder = stack.pop()
            try:
                key = _identity(folder, folder.stat())
                if key in self._seen_dirs:
                    continue  # a symlinked folder seen already: a loop, or an overlap of two paths
                self._seen_dirs.add(key)
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError as exc:
                self._reject(folder, f"cannot list the folder: {_reason(exc)}")
                continue
            files: list[tuple[Path, os.stat_result]] = []
            subfolders: list[Path] = []
            for entry in entries:
                path = Path(entry.path)
                try:
                    if entry.is_dir():
                        subfolders.append(path)
                        continue
                    if not entry.is_file():
                        broken = entry.is_symlink() and not path.exists()
                        self._reject(path, "broken symbolic link" if broken else "not a regular file")
                        continue
                    st = entry.stat()
                except OSError as exc:
                    self._reject(path, f"cannot read: {_reason(exc)}")
                    continue
                if is_dicomdir_name(entry.name):
                    self._read_dicomdir(path, st)  # its records first, then the rest of the folder
                else:
                    files.append((path, st))
            for path, st in files:
                self._add_file(path, st)
            stack.extend(reversed(subfolders))

    def _read_dicomdir(self, path: Path, st: os.stat_result) -> None:
        key = _identity(path, st)
        if key in self._seen_files:
            return
        self._seen_files.add(key)  # never ingested: a DICOMDIR is not a storable instance
        try:
            records = pydicom.dcmread(path).get("DirectoryRecordSequence")
        except Exception as exc:  # pydicom raises many kinds on malformed input
            self._reject(path, f"cannot read the DICOMDIR: {exc}")
            return
        if records is None:
            self._reject(path, "not a DICOMDIR: it has no Directory Record Sequence")
            return
        self.result.dicomdirs += 1
        for record in records:
            file_id = record.get("ReferencedFileID")
            if file_id:
                self._add_referenced(
                    path, [file_id] if isinstance(file_id, str) else [str(c) for c in file_id]
                )

    def _add_referenced(self, dicomdir: Path, components: list[str]) -> None:
        if not all(_valid_component(c) for c in components):
            file_id = "\\".join(components)
            self._reject(dicomdir, f"a directory record names an invalid file ID {file_id!r}")
            return
        found = self._resolve(dicomdir.parent, components)
        if found is None:
            self._reject(dicomdir.parent.joinpath(*components), f"referenced by {dicomdir} but missing")
            return
        try:
            st = found.stat()
        except OSError as exc:
            self._reject(found, f"cannot read: {_reason(exc)}")
            return
        if not stat.S_ISREG(st.st_mode):
            self._reject(found, f"referenced by {dicomdir} but not a regular file")
            return
        self._add_file(found, st)

    def _resolve(self, base: Path, components: Sequence[str]) -> Path | None:
        """The File ID's path, each component matched case-insensitively: media mix upper and lower case."""
        current = base
        for component in components:
            exact = current / component
            if os.path.lexists(exact):
                current = exact
                continue
            name = self._listing(current).get(_normalize(component))
            if name is None:
                return None
            current = current / name
        return current

    def _listing(self, folder: Path) -> dict[str, str]:
        cached = self._listings.get(str(folder))
        if cached is None:
            try:
                names = sorted(os.listdir(folder))
            except OSError:
                names = []
            cached = {}
            for name in names:
                cached.setdefault(_normalize(name), name)
            self._listings[str(folder)] = cached
        return cached

    def _add_file(self, path: Path, st: os.stat_result) -> None:
        key = _identity(path, st)
        if key in self._seen_files:
            return
        self._seen_files.add(key)
        self.result.files.append((str(path), st.st_size))
        if self._on_found is not None:
            self._on_found(len(self.result.files))

    def _reject(self, path: Path, reason: str) -> None:
        self.result.rejected.append((path, reason))


def _identity(path: Path, st: os.stat_result) -> object:
    # Some filesystems (FUSE, some network mounts) report inode 0; the resolved path stands in there.
    return (st.st_dev, st.st_ino) if st.st_ino else os.path.realpath(path)


def _valid_component(component: str) -> bool:
    # PS3.10 8.5 allows A-Z 0-9 _ only; be lenient on case and letters, strict on anything path-like.
    return component not in ("", ".", "..") and not any(c in component for c in "/\\\0")


# --- bounded parallel map ----------------------------------------------------------------------------------
def run_bounded(
    fn: Callable[[T], R],
    items: Iterator[T],
    on_done: Callable[[T, R], bool],
    *,
    workers: int,
    max_in_flight: int,
) -> bool:
    """Apply ``fn`` to ``items`` on ``workers`` threads, with at most ``max_in_flight`` submitted at a time.

    ``items`` is consumed lazily. ``on_done`` runs in the calling thread for each result and returns False to
    stop submitting (what is in flight still finishes). ``fn`` should not raise. Returns True when
    interrupted (Ctrl-C): work not started is cancelled, work started is finished and reported.
    """
    if workers < 1 or max_in_flight < 1:
        raise ValueError("workers and max_in_flight must be at least 1")
    pending: dict[Future[R], T] = {}
    more = True
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="import") as pool:
        try:
            while True:
                while more and len(pending) < max_in_flight:
                    try:
                        item = next(items)
                    except StopIteration:
                        more = False
                        break
                    pending[pool.submit(fn, item)] = item
                if not pending:
                    return False
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    if not on_done(pending.pop(future), future.result()):
                        more = False
        except KeyboardInterrupt:
            for future in pending:
                future.cancel()
            for future, item in pending.items():
                if not future.cancelled():
                    on_done(item, future.result())
            return True


# --- import ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _FileResult:
    outcome: StoreOutcome | None  # None: rejected
    reason: str = ""
    stop: bool = False  # the archive cannot store now; every later file would fail the same way


def _ingest_one(ingest: IngestService, path: str) -> _FileResult:
    try:
        return _FileResult(ingest.ingest_file(Path(path)).outcome)
    except OutOfResources as exc:
        return _FileResult(None, exc.message, stop=True)
    except LightboxError as exc:
        return _FileResult(None, exc.message)
    except OSError as exc:
        return _FileResult(None, f"cannot read the file: {_reason(exc)}")
    except Exception as exc:  # one file's unexpected failure must not end an import of thousands
        log.exception("unexpected error while importing %s", path)
        return _FileResult(None, f"unexpected error: {type(exc).__name__}: {exc}")


def run_import(
    ingest: IngestService,
    paths: Sequence[Path],
    *,
    workers: int,
    show_progress: bool,
    console: Console | None = None,
    progress_console: Console | None = None,
) -> ImportSummary:
    """Import ``paths`` (files, folders, DICOMDIR media) and print a summary on ``console`` (stdout).

    The progress bar goes to ``progress_console`` (stderr) when ``show_progress`` is set and that console is a
    terminal, or forced to be one (FORCE_COLOR, TTY_COMPATIBLE). Ctrl-C stops the import cleanly: files being
    ingested finish, the others are counted as not imported, and the summary says so. When the archive cannot
    store any more (disk full, database down), the import stops the same way instead of rejecting every file.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    console = console or Console()
    progress_console = progress_console or Console(stderr=True)
    summary = ImportSummary()
    started = time.monotonic()
    with _Display(progress_console if show_progress and progress_console.is_terminal else None) as display:
        scanner = _Scanner(display.found)
        plan = scanner.result  # filled in as the scan goes, so an interrupted scan still counts what it found

        def done(item: tuple[str, int], result: _FileResult) -> bool:
            _count(summary, Path(item[0]), result)
            summary.bytes_read += item[1]
            display.advance(summary.bytes_read)
            if result.stop and summary.stopped_reason is None:
                summary.stopped_reason = result.reason
            return not result.stop

        try:
            for path in paths:
                scanner.add(path)
            display.start(len(plan.files))
            summary.interrupted = run_bounded(
                lambda item: _ingest_one(ingest, item[0]),
                iter(plan.files),
                done,
                workers=workers,
                max_in_flight=workers * _IN_FLIGHT_PER_WORKER,
            )
        except KeyboardInterrupt:  # while scanning; run_bounded handles its own
            summary.interrupted = True
        summary.rejected.extend(plan.rejected)
        summary.dicomdirs = plan.dicomdirs
        summary.not_imported = len(plan.files) - summary.files
    summary.rejected.sort(key=lambda r: str(r[0]))
    summary.elapsed = time.monotonic() - started
    print_summary(summary, console)
    return summary


def _count(summary: ImportSummary, path: Path, result: _FileResult) -> None:
    if result.outcome is StoreOutcome.STORED:
        summary.stored += 1
    elif result.outcome is StoreOutcome.ALREADY_PRESENT:
        summary.already_present += 1
    elif result.outcome is StoreOutcome.REPLACED:
        summary.replaced += 1
    elif result.outcome is StoreOutcome.KEPT_EXISTING:
        summary.kept_existing += 1
    else:
        summary.ingest_rejected += 1
        summary.rejected.append((path, result.reason))


# --- output ------------------------------------------------------------------------------------------------
class _RateColumn(ProgressColumn):
    """Files and megabytes per second since the import began."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        if task.total is None or elapsed <= 0:
            return Text("")
        files_per_s = task.completed / elapsed
        mb_per_s = task.fields.get("bytes", 0) / 1e6 / elapsed
        return Text(f"{files_per_s:.1f} files/s {mb_per_s:.1f} MB/s", style="progress.data.speed")


class _Display:
    """The progress bar, or nothing when there is no terminal to draw it on."""

    def __init__(self, console: Console | None) -> None:
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._redirected: list[tuple[logging.StreamHandler[TextIO], TextIO]] = []
        if console is not None:
            self._progress = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                _RateColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )

    def __enter__(self) -> _Display:
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task("scanning", total=None, bytes=0)
            self._logs_above()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            for handler, stream in self._redirected:
                handler.setStream(stream)
            self._progress.stop()

    def found(self, files: int) -> None:
        if self._progress is not None and self._task is not None and files % 256 == 0:
            self._progress.update(self._task, completed=files)

    def start(self, total: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.reset(self._task, total=total, description="importing", bytes=0)

    def advance(self, bytes_read: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1, bytes=bytes_read)

    def _logs_above(self) -> None:
        # A log handler writing to the real terminal would tear the bar; the live display's proxy (sys.stderr
        # while it runs) prints the lines above it instead.
        for handler in logging.getLogger().handlers:
            if type(handler) is logging.StreamHandler and handler.stream in (sys.__stderr__, sys.__stdout__):
                old = handler.setStream(sys.stderr)
                if old is not None:
                    self._redirected.append((handler, old))


def print_summary(summary: ImportSummary, console: Console) -> None:
    """Counts, then every rejected file with its reason, one line each (so that it can be grepped)."""
    rate = summary.files / summary.elapsed if summary.elapsed > 0 else 0.0
    lines = [
        f"stored           {summary.stored:>8}",
        f"already present  {summary.already_present:>8}",
        f"replaced         {summary.replaced:>8}",
        f"kept existing    {summary.kept_existing:>8}",
        f"rejected         {len(summary.rejected):>8}",
        f"{summary.files} files, {format_size(summary.bytes_read)} in {summary.elapsed:.1f} s"
        + f" ({rate:.1f} files/s)"
        + (f"; {summary.dicomdirs} DICOMDIR read" if summary.dicomdirs else ""),
    ]
    if summary.interrupted:
        lines.append(f"interrupted: {summary.not_imported} files not imported")
    if summary.stopped_reason is not None:
        lines.append(f"stopped: {summary.stopped_reason}; {summary.not_imported} files not imported")
    if summary.rejected:
        lines.append("rejected files:")
        lines.extend(f"  {path}: {' '.join(reason.split())}" for path, reason in summary.rejected)
    for line in lines:
        # Text, not markup: paths and reasons may hold brackets; soft wrap keeps one line per file.
        console.print(Text(line), soft_wrap=True, highlight=False)


def format_size(n: int) -> str:
    value, unit = float(n), "bytes"
    for larger in ("kB", "MB", "GB"):
        if value < 1000:
            break
        value, unit = value / 1000, larger
    return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
