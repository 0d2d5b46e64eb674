"""The one CLI: ``lightbox serve | import | export | reindex | verify | ae ... | user ... | token ...``.

Every command takes ``--data-dir`` and ``--config`` so that it acts on the same archive as ``serve``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from lightbox import __version__
from lightbox.app import Archive, build_archive
from lightbox.audit.lines import audit_line
from lightbox.config import Settings, load_settings
from lightbox.deidentify.keys import MIN_KEY_BYTES
from lightbox.domain.accounts import Role, format_ae_permissions, parse_ae_permissions, parse_role
from lightbox.domain.audit import AuditAction, AuditFilter
from lightbox.domain.compression import Codec
from lightbox.domain.errors import ConfigurationError, LightboxError
from lightbox.domain.levels import UNIQUE_KEY, Level
from lightbox.services.audit import MAX_LIMIT as MAX_AUDIT_LIMIT
from lightbox.services.backup_layout import Problem
from lightbox.services.compression import CompressionReport, CompressionService
from lightbox.services.verify import VerifyReport

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


@contextlib.contextmanager
def opened_archive(config_file: Path | None, data_dir: Path | None) -> Iterator[Archive]:
    """The archive for one command, closed when it is done."""
    archive = open_archive(config_file, data_dir)
    try:
        yield archive
    finally:
        archive.close()


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
        _announce_first_admin(archive)
        run(archive)
    finally:
        archive.close()


def _announce_first_admin(archive: Archive) -> None:
    """On the first start (no user at all) the admin account is made, its password shown this once."""
    password = archive.accounts.ensure_first_admin()
    if password is None:
        return
    click.echo(
        "\n".join(
            [
                "",
                "  First start: an administrator account has been created.",
                "    user:     admin",
                f"    password: {password}",
                "  It is shown this once. Change it with: lightbox user passwd admin",
                "",
            ]
        )
    )


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


@main.command("export")
@archive_options
@click.argument("destination", type=click.Path(file_okay=False, path_type=Path))
@click.option("--patient", "patients", multiple=True, metavar="ID", help="A patient's studies (repeatable).")
@click.option("--study", "studies", multiple=True, metavar="UID", help="A study (repeatable).")
@click.option("--series", "series", multiple=True, metavar="UID", help="A series (repeatable).")
@click.option(
    "--deidentify",
    is_flag=True,
    help="Apply PS3.15's Basic Application Level Confidentiality Profile (docs/deidentification.md).",
)
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="With --deidentify: a secret (at least 16 bytes) that makes the new UIDs and patient pseudonyms; "
    "the same file gives the same ones again. Without it, a random key for this run.",
)
def export(
    config_file: Path | None,
    data_dir: Path | None,
    destination: Path,
    patients: tuple[str, ...],
    studies: tuple[str, ...],
    series: tuple[str, ...],
    deidentify: bool,
    key_file: Path | None,
) -> None:
    """Write patients, studies or series as DICOM files under DESTINATION/<study>/<series>/."""
    from lightbox.importer import format_size

    selections = [
        (level, {UNIQUE_KEY[level]: list(values)})
        for level, values in ((Level.PATIENT, patients), (Level.STUDY, studies), (Level.SERIES, series))
        if values
    ]
    if not selections:
        raise click.UsageError("name what to export: --patient, --study or --series")
    if key_file is not None and not deidentify:
        raise click.UsageError("--key-file goes with --deidentify")
    # One key for the whole run: a series given twice, or a study and its patient, get the same new UIDs.
    key = _read_key(key_file) if key_file is not None else secrets.token_bytes(32)
    with opened_archive(config_file, data_dir) as archive:
        for level, uids in selections:
            archive.export.check(level, uids)  # every selection, before anything is written
        results = [
            archive.export.export(level, uids, destination, deidentify=deidentify, source="cli", key=key)
            for level, uids in selections
        ]
    written = sum(r.written for r in results)
    there = sum(r.instances for r in results) - written
    line = f"exported {written} instances, {format_size(sum(r.size for r in results))}, to {destination}"
    line += ", de-identified" if deidentify else ""
    click.echo(line + (f"; {there} were there already" if there else ""))
    burned_in = sum(r.burned_in for r in results)
    if burned_in:
        click.echo(
            f"warning: {burned_in} instances declare burned-in annotation (Burned In Annotation YES): "
            "their pixel data is exported as stored and may show identifying text",
            err=True,
        )


def _read_key(path: Path) -> bytes:
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="--key-file") from None
    if len(key) < MIN_KEY_BYTES:
        raise click.BadParameter(
            f"{path} holds {len(key)} bytes; a key needs at least {MIN_KEY_BYTES} "
            "(make one with: openssl rand -hex 32 > FILE)",
            param_hint="--key-file",
        )
    return key


@main.command()
@archive_options
@click.option(
    "--codec",
    type=click.Choice([c.value for c in Codec if c is not Codec.NONE]),
    default=None,
    help="Lossless codec (default: storage.compression of the settings).",
)
def compress(config_file: Path | None, data_dir: Path | None, codec: str | None) -> None:
    """Compress every stored uncompressed object losslessly, now (a running server does it by itself)."""
    archive = open_archive(config_file, data_dir)
    try:
        service = archive.compression
        if codec is not None:
            service = CompressionService(archive.index, archive.blobs, archive.ingest, Codec(codec))
        if service.codec is Codec.NONE:
            raise click.UsageError("compression is off (storage.compression = none): name a --codec")

        def show(report: CompressionReport) -> None:
            click.echo(f"  {report.compressed} compressed, {report.kept} kept as they are", err=True)

        report = service.compress_all(show)
    finally:
        archive.close()
    saved = report.bytes_before - report.bytes_after
    ratio = report.bytes_before / report.bytes_after if report.bytes_after else 1.0
    click.echo(
        f"compressed {report.compressed} objects with {service.codec.value} "
        f"({report.bytes_before:,} -> {report.bytes_after:,} bytes, {ratio:.2f}x, {saved:,} bytes saved); "
        f"{report.kept} kept as they are, {report.skipped} to try again later"
    )


@main.group()
def storage() -> None:
    """Storage tiers: what each holds, and the lifecycle and retention rules."""


@storage.command("status")
@archive_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def storage_status(config_file: Path | None, data_dir: Path | None, as_json: bool) -> None:
    """Instances and bytes in each storage tier."""
    archive = open_archive(config_file, data_dir)
    try:
        usage = archive.lifecycle.usage()
        urls = {
            archive.settings.storage.first_tier: archive.settings.storage_url,
            **archive.settings.storage.tiers,
        }
    finally:
        archive.close()
    if as_json:
        tiers = {
            name: {"instances": n, "bytes": size, "url": urls[name]} for name, (n, size) in usage.items()
        }
        click.echo(json.dumps({"tiers": tiers}))
        return
    for name, (count, size) in usage.items():
        click.echo(f"{name:<16} {count:>12,} instances {size:>20,} bytes  {urls[name]}")


@storage.command("apply")
@archive_options
def storage_apply(config_file: Path | None, data_dir: Path | None) -> None:
    """Apply the lifecycle and retention rules now (a running server applies them by itself)."""
    archive = open_archive(config_file, data_dir)
    try:
        report = archive.lifecycle.apply()
    finally:
        archive.close()
    moved = ", ".join(f"{count} to {tier}" for tier, count in report.moved.items()) or "none"
    click.echo(
        f"moved: {moved}; {report.failed} failed; {report.deleted_studies} studies deleted by retention"
    )
    sys.exit(1 if report.failed else 0)


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


@main.command()
@archive_options
@click.argument("destination", type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the backup's manifest (JSON) instead.")
def backup(config_file: Path | None, data_dir: Path | None, destination: Path, as_json: bool) -> None:
    """Back the archive up into DESTINATION, online: a consistent index snapshot, and the objects not
    backed up before (docs/storage.md, Backup and restore)."""
    from lightbox.app import build_backup, folder_store, index_engine
    from lightbox.importer import format_size
    from lightbox.services.backup_layout import objects_path

    with opened_archive(config_file, data_dir) as archive:
        report = build_backup(archive).backup(
            destination,
            folder_store(objects_path(destination), archive.settings.storage.tiers),
            engine=index_engine(archive.settings),
        )
    if as_json:
        click.echo(report.manifest.read_text().rstrip())
    else:
        click.echo(
            f"backup {report.name}: {report.instances} instances ({format_size(report.bytes)}) in "
            f"{report.seconds:.1f} s; copied {report.copied} objects ({format_size(report.copied_bytes)}), "
            f"{report.already_there} were there already"
        )
        if report.deleted or report.replaced or report.moved:
            click.echo(
                f"  during the backup {len(report.deleted)} instances were deleted (left out), "
                f"{len(report.replaced)} replaced (the newer objects are in) and {len(report.moved)} "
                "moved to another tier"
            )
    _exit_on_problems(report.problems, f"instances are left out of backup {report.name}")


def _exit_on_problems(problems: Sequence[Problem], what: str) -> None:
    """Each object a backup or restore left out, on stderr, then exit 1."""
    for problem in problems:
        click.echo(f"error: {problem.sop_instance_uid} ({problem.key}): {problem.problem}", err=True)
    if problems:
        click.echo(f"error: {len(problems)} {what}", err=True)
        sys.exit(1)


@main.command()
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--data-dir",
    "target",
    required=True,
    type=click.Path(path_type=Path),
    help="The new archive's data directory: absent or empty.",
)
@click.option("--at", default=None, help="Which backup: its name, or a time (the last taken by then).")
@click.option(
    "--database-url",
    default=None,
    help="Restore the index into this empty PostgreSQL database instead of DATA_DIR/index.db.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def restore(source: Path, target: Path, at: str | None, database_url: str | None, as_json: bool) -> None:
    """Rebuild a working archive from a backup in SOURCE, every object checked against its checksum."""
    import json

    from lightbox.app import build_restore, folder_store, restore_database
    from lightbox.importer import format_size
    from lightbox.services.backup_layout import choose_backup
    from lightbox.services.restore import check_empty

    check_empty(target)
    name = choose_backup(source, at)
    with contextlib.ExitStack() as stack:
        database = None
        if database_url is not None:
            database = restore_database(database_url)
            stack.callback(database.close)
        report = build_restore(source).restore(
            name, target, lambda: folder_store(target / "objects"), database
        )
    if as_json:
        document = {
            "name": report.name,
            "instances": report.instances,
            "bytes": report.bytes,
            "restored": report.restored,
            "problems": [p.as_dict() for p in report.problems],
            "seconds": round(report.seconds, 3),
        }
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo(
            f"restored backup {report.name} into {target}: {report.instances} instances "
            f"({format_size(report.bytes)}), every object checked, in {report.seconds:.1f} s"
        )
    _exit_on_problems(report.problems, "instances could not be restored and are left out")


@main.command()
@archive_options
@click.option("--repair", is_flag=True, help="Restore missing or damaged copies from the other store.")
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
def verify(config_file: Path | None, data_dir: Path | None, repair: bool, as_json: bool) -> None:
    """Read every stored object back and check it against its SHA-256: exit 0 when all are sound, 1 when a
    problem is left."""
    from rich.console import Console
    from rich.progress import Progress

    with (
        opened_archive(config_file, data_dir) as archive,
        Progress(console=Console(stderr=True), transient=True) as progress,
    ):
        task = progress.add_task("verifying", total=archive.manage.statistics().instances)
        report = archive.verify.verify(
            repair=repair, progress=lambda so_far: progress.update(task, completed=so_far.objects)
        )
    if as_json:
        click.echo(orjson.dumps(report.as_dict()).decode())
    else:
        _echo_verify_report(report)
    sys.exit(1 if report.unresolved else 0)


def _echo_verify_report(report: VerifyReport) -> None:
    for p in report.problems:
        what = f"{p.store} {p.fault.value}: {p.blob_key}"
        if p.sop_instance_uid:
            what += f" (instance {p.sop_instance_uid})"
        click.echo(f"{what}: {p.detail}" + (f"; {p.repair}" if p.repair else ""))
    found = len(report.problems)
    click.echo(
        f"verified {report.objects} objects, {report.bytes_read / 1e6:.1f} MB in {report.seconds:.1f} s "
        f"({report.mb_per_second:.1f} MB/s): {found} problem{'' if found == 1 else 's'}, "
        f"{len(report.repaired)} repaired, {len(report.unresolved)} left"
    )


@main.group()
def ae() -> None:
    """The registry of remote DICOM application entities."""


@ae.command("add")
@archive_options
@click.argument("ae_title")
@click.option("--host", required=True, help="Host name or address of the remote AE.")
@click.option("--port", required=True, type=int, help="Its DICOM port.")
@click.option("--description", default="", help="Free text, for people.")
@click.option(
    "--allow",
    default="all",
    show_default=True,
    help="What it may ask: any of echo,store,find,get,move (comma-separated), or all.",
)
def ae_add(
    config_file: Path | None,
    data_dir: Path | None,
    ae_title: str,
    host: str,
    port: int,
    description: str,
    allow: str,
) -> None:
    """Register a remote AE (a C-MOVE destination, a modality, a workstation)."""
    permissions = parse_ae_permissions(allow)
    with opened_archive(config_file, data_dir) as archive:
        added = archive.manage.add_remote_ae(ae_title, host, port, description, permissions)
    allowed = format_ae_permissions(added.permissions) or "nothing"
    click.echo(f"added {added.ae_title} at {added.host}:{added.port}, allowed {allowed}")


@ae.command("list")
@archive_options
def ae_list(config_file: Path | None, data_dir: Path | None) -> None:
    """List the registered remote AEs and what each may ask."""
    with opened_archive(config_file, data_dir) as archive:
        aes = archive.manage.list_remote_aes()
    if not aes:
        click.echo("no remote AEs registered")
        return
    width = max(len(a.ae_title) for a in aes)
    for a in aes:
        line = (
            f"{a.ae_title:<{width}}  {a.host}:{a.port}  {format_ae_permissions(a.permissions) or 'nothing'}"
        )
        click.echo(f"{line}  {a.description}" if a.description else line)


@ae.command("remove")
@archive_options
@click.argument("ae_title")
def ae_remove(config_file: Path | None, data_dir: Path | None, ae_title: str) -> None:
    """Remove a remote AE from the registry."""
    with opened_archive(config_file, data_dir) as archive:
        archive.manage.remove_remote_ae(ae_title)
        click.echo(f"removed {ae_title}")


@main.group()
def user() -> None:
    """People and devices that use the archive, and their roles."""


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise click.UsageError("--password-stdin: nothing came on standard input")
        return line.rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@user.command("add")
@archive_options
@click.argument("name")
@click.option(
    "--role",
    required=True,
    type=click.Choice([r.value for r in Role], case_sensitive=False),
    help="admin, radiologist, viewer or uploader.",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.option("--no-password", is_flag=True, help="No password: the account logs in with API tokens only.")
def user_add(
    config_file: Path | None,
    data_dir: Path | None,
    name: str,
    role: str,
    password_stdin: bool,
    no_password: bool,
) -> None:
    """Add a user; without --password-stdin or --no-password the password is asked for."""
    if password_stdin and no_password:
        raise click.UsageError("--password-stdin and --no-password exclude each other")
    password = None if no_password else _read_password(password_stdin)
    with opened_archive(config_file, data_dir) as archive:
        added = archive.accounts.add_user(name, parse_role(role), password)
    click.echo(f"added user {added.name} ({added.role.value})")


@user.command("list")
@archive_options
def user_list(config_file: Path | None, data_dir: Path | None) -> None:
    """List the users, their roles and whether they are disabled."""
    with opened_archive(config_file, data_dir) as archive:
        users = archive.accounts.list_users()
    if not users:
        click.echo("no users")
        return
    width = max((len(u.name) for u in users), default=4)
    for u in users:
        state = "  disabled" if u.disabled else ""
        click.echo(f"{u.name:<{width}}  {u.role.value:<11}  since {u.created_at:%Y-%m-%d}{state}")


@user.command("disable")
@archive_options
@click.argument("name")
def user_disable(config_file: Path | None, data_dir: Path | None, name: str) -> None:
    """Stop a user from logging in; their tokens stop working too."""
    with opened_archive(config_file, data_dir) as archive:
        archive.accounts.disable_user(name)
    click.echo(f"disabled {name}")


@user.command("enable")
@archive_options
@click.argument("name")
def user_enable(config_file: Path | None, data_dir: Path | None, name: str) -> None:
    """Let a disabled user in again."""
    with opened_archive(config_file, data_dir) as archive:
        archive.accounts.enable_user(name)
    click.echo(f"enabled {name}")


@user.command("passwd")
@archive_options
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
def user_passwd(config_file: Path | None, data_dir: Path | None, name: str, password_stdin: bool) -> None:
    """Set a user's password."""
    password = _read_password(password_stdin)
    with opened_archive(config_file, data_dir) as archive:
        archive.accounts.set_password(name, password)
    click.echo(f"password of {name} changed")


@main.group()
def token() -> None:
    """API tokens: how scripts and devices authenticate over HTTP."""


@token.command("create")
@archive_options
@click.option("--user", "user_name", required=True, help="Whose token: it acts with that user's role.")
@click.option(
    "--name", "label", required=True, help="A name for it, unique for the user (e.g. ct-scanner-2)."
)
@click.option("--expires", type=int, default=None, help="Days until it expires (default: never).")
def token_create(
    config_file: Path | None, data_dir: Path | None, user_name: str, label: str, expires: int | None
) -> None:
    """Create a token; the token is printed alone on the last line, this once."""
    with opened_archive(config_file, data_dir) as archive:
        secret, record = archive.accounts.create_token(user_name, label, expires)
    until = f"until {record.expires_at:%Y-%m-%d %H:%M} UTC" if record.expires_at else "with no expiry"
    click.echo(f"token {record.label} for {record.user}, {until}; keep it secret, it is not shown again:")
    click.echo(secret)


@token.command("list")
@archive_options
@click.option("--user", "user_name", default=None, help="Only this user's tokens.")
def token_list(config_file: Path | None, data_dir: Path | None, user_name: str | None) -> None:
    """List tokens (never the tokens themselves): owner, name, expiry, revocation, last use."""
    with opened_archive(config_file, data_dir) as archive:
        tokens = archive.accounts.list_tokens(user_name)
    if not tokens:
        click.echo("no tokens")
    for t in tokens:
        state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else ""
        if not state and t.expires_at:
            state = f"expires {t.expires_at:%Y-%m-%d}"
        used = f"last used {t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never used"
        click.echo(f"{t.user}  {t.label}  created {t.created_at:%Y-%m-%d}  {state or 'no expiry'}  {used}")


@token.command("revoke")
@archive_options
@click.option("--user", "user_name", required=True, help="Whose token.")
@click.option("--name", "label", required=True, help="The token's name.")
def token_revoke(config_file: Path | None, data_dir: Path | None, user_name: str, label: str) -> None:
    """Revoke a token: it is refused from now on (its record is kept for the audit trail)."""
    with opened_archive(config_file, data_dir) as archive:
        archive.accounts.revoke_token(user_name, label)
    click.echo(f"revoked token {label} of {user_name}")


@main.group()
def audit() -> None:
    """Read and check the audit trail."""


def _moment(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 date or date-time; UTC unless it has an offset."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 date or date-time", param_hint=option
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@audit.command("list")
@archive_options
@click.option("--patient", default=None, help="Only records of this Patient ID.")
@click.option("--user", "user_name", default=None, help="Only acts of this user.")
@click.option("--ae", "ae_title", default=None, help="Only acts of this calling AE title.")
@click.option("--action", type=click.Choice([a.value for a in AuditAction]), default=None)
@click.option("--study", default=None, help="Only records of this Study Instance UID.")
@click.option("--since", default=None, help="From this time on (ISO 8601, UTC unless an offset is given).")
@click.option("--until", default=None, help="Before this time.")
@click.option("--limit", type=click.IntRange(1, MAX_AUDIT_LIMIT), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, with the hashes.")
def audit_list(
    config_file: Path | None,
    data_dir: Path | None,
    patient: str | None,
    user_name: str | None,
    ae_title: str | None,
    action: str | None,
    study: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """The newest audit records, newest first."""
    where = AuditFilter(
        patient,
        user_name,
        ae_title,
        AuditAction(action) if action else None,
        study,
        _moment(since, "--since"),
        _moment(until, "--until"),
    )
    with opened_archive(config_file, data_dir) as archive:
        records = archive.audit.list(where, limit=limit)
    for chained in records:
        click.echo(audit_line(chained, as_json))


@audit.command("verify")
@archive_options
def audit_verify(config_file: Path | None, data_dir: Path | None) -> None:
    """Recompute the hash chain: exit 0 when every record is as written, 1 at the first that is not."""
    with opened_archive(config_file, data_dir) as archive:
        report = archive.audit.verify()
    if report.intact:
        click.echo(f"audit trail intact: {report.checked} records; head {report.head_seq} {report.head_hash}")
        return
    click.echo(f"audit trail BROKEN at record {report.broken_at}: {report.problem}", err=True)
    sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
