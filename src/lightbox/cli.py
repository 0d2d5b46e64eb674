"""The one CLI: ``lightbox serve | import | reindex | ae ...``.

Every command takes ``--data-dir`` and ``--config`` so that it acts on the same archive as ``serve``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from lightbox import __version__
from lightbox.app import Archive, build_archive
from lightbox.config import Settings, load_settings
from lightbox.domain.errors import ConfigurationError, LightboxError

F = TypeVar("F", bound=Callable[..., Any])


def archive_options(fn: F) -> F:
    fn = click.option(
        "--config",
        "config_file",
        type=click.Path(path_type=Path),
        default=None,
        help="TOML settings file (LIGHTBOX_CONFIG).",
    )(fn)
    return click.option(
        "--data-dir",
        type=click.Path(path_type=Path),
        default=None,
        help="Archive data directory (LIGHTBOX_DATA_DIR; default ./lightbox-data).",
    )(fn)


def open_settings(config_file: Path | None, data_dir: Path | None, **overrides: Any) -> Settings:
    settings = load_settings(config_file, data_dir=data_dir, **overrides)
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its per-start plugin lines are noise
    return settings


def open_archive(config_file: Path | None, data_dir: Path | None) -> Archive:
    return build_archive(open_settings(config_file, data_dir))


class _Group(click.Group):
    """Domain and configuration errors end in one clear line and a non-zero exit, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigurationError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(2)
        except LightboxError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="lightbox")
def main() -> None:
    """Lightbox: an open-source PACS."""


@main.command()
@archive_options
@click.option("--host", default=None, help="Listen address (LIGHTBOX_HOST; default 127.0.0.1).")
@click.option("--dicom-port", type=int, default=None, help="DICOM port (LIGHTBOX_DICOM_PORT; default 11112).")
@click.option("--http-port", type=int, default=None, help="HTTP port (LIGHTBOX_HTTP_PORT; default 8080).")
@click.option(
    "--ae-title", default=None, help="The archive's AE title (LIGHTBOX_AE_TITLE; default LIGHTBOX)."
)
def serve(
    config_file: Path | None,
    data_dir: Path | None,
    host: str | None,
    dicom_port: int | None,
    http_port: int | None,
    ae_title: str | None,
) -> None:
    """Run the archive."""
    from lightbox.server import run

    settings = open_settings(
        config_file, data_dir, host=host, dicom_port=dicom_port, http_port=http_port, ae_title=ae_title
    )
    archive = build_archive(settings)
    try:
        run(archive)
    finally:
        archive.close()


@main.command("import")
@archive_options
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--workers", type=int, default=None, help="Parallel ingest threads (default: ingest.workers).")
@click.option("--quiet", is_flag=True, help="No progress bar; the summary only.")
def import_(
    config_file: Path | None,
    data_dir: Path | None,
    paths: tuple[Path, ...],
    workers: int | None,
    quiet: bool,
) -> None:
    """Import DICOM files, folders (recursively) and DICOMDIR media."""
    from lightbox.importer import run_import

    if workers is not None and workers < 1:
        raise click.BadParameter("must be at least 1", param_hint="--workers")
    archive = open_archive(config_file, data_dir)
    try:
        summary = run_import(
            archive.ingest,
            list(paths),
            workers=workers or archive.settings.ingest.workers,
            show_progress=not quiet,
        )
    finally:
        archive.close()
    # 130: stopped by Ctrl-C (128 + SIGINT), as shells report it.
    sys.exit(130 if summary.interrupted else 1 if summary.rejected else 0)


@main.command()
@archive_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def reindex(config_file: Path | None, data_dir: Path | None, yes: bool) -> None:
    """Rebuild the index from the stored objects (the AE registry is kept)."""
    from rich.progress import Progress

    archive = open_archive(config_file, data_dir)
    try:
        if not yes:
            click.confirm("Rebuild the whole index from the stored objects?", abort=True)
        with Progress(transient=True) as progress:
            task = progress.add_task("reindexing", total=None)
            report = archive.manage.reindex(
                lambda n: progress.advance(task, n), workers=archive.settings.ingest.workers
            )
        click.echo(f"indexed {report.indexed} objects, {len(report.failed)} failed")
        for key, reason in report.failed:
            click.echo(f"  {key}: {reason}")
    finally:
        archive.close()
    sys.exit(1 if report.failed else 0)


@main.group()
def ae() -> None:
    """The registry of remote DICOM application entities."""


@ae.command("add")
@archive_options
@click.argument("ae_title")
@click.option("--host", required=True, help="Host name or address of the remote AE.")
@click.option("--port", required=True, type=int, help="Its DICOM port.")
@click.option("--description", default="", help="Free text, for people.")
def ae_add(
    config_file: Path | None, data_dir: Path | None, ae_title: str, host: str, port: int, description: str
) -> None:
    """Register a remote AE (a C-MOVE destination, a modality)."""
    archive = open_archive(config_file, data_dir)
    try:
        added = archive.manage.add_remote_ae(ae_title, host, port, description)
        click.echo(f"added {added.ae_title} at {added.host}:{added.port}")
    finally:
        archive.close()


@ae.command("list")
@archive_options
def ae_list(config_file: Path | None, data_dir: Path | None) -> None:
    """List the registered remote AEs."""
    archive = open_archive(config_file, data_dir)
    try:
        aes = archive.manage.list_remote_aes()
    finally:
        archive.close()
    if not aes:
        click.echo("no remote AEs registered")
        return
    width = max(len(a.ae_title) for a in aes)
    for a in aes:
        line = f"{a.ae_title:<{width}}  {a.host}:{a.port}"
        click.echo(f"{line}  {a.description}" if a.description else line)


@ae.command("remove")
@archive_options
@click.argument("ae_title")
def ae_remove(config_file: Path | None, data_dir: Path | None, ae_title: str) -> None:
    """Remove a remote AE from the registry."""
    archive = open_archive(config_file, data_dir)
    try:
        archive.manage.remove_remote_ae(ae_title)
        click.echo(f"removed {ae_title}")
    finally:
        archive.close()


if __name__ == "__main__":  # pragma: no cover
    main()
