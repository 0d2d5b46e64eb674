"""One typed Settings object, read from a TOML file, LIGHTBOX_* environment variables and CLI flags.

Precedence, highest first: command-line flags, environment, the TOML file, defaults. Nested sections map to
environment variables with one underscore: ``[database] url`` is ``LIGHTBOX_DATABASE_URL``. Invalid values
stop the start with a message naming the setting. Every option is documented in docs/configuration.md.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from lightbox.domain.compression import Codec
from lightbox.domain.errors import ConfigurationError
from lightbox.index.base import DuplicatePolicy

_AE_TITLE = re.compile(r"[\x20-\x5b\x5d-\x7e]{1,16}")  # PS3.5 AE VR: 16 chars, no backslash or controls


def validate_ae_title(value: str) -> str:
    stripped = value.strip()
    if not stripped or not _AE_TITLE.fullmatch(value) or len(value) > 16:
        raise ValueError(f"{value!r} is not a valid AE title (1-16 printable characters, no backslash)")
    return stripped


class DatabaseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        default=None,
        description="Index database URL: sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB. "
        "Default: SQLite at DATA_DIR/index.db.",
    )
    synchronous_commit: bool = Field(
        default=False,
        description="Wait for the database's own fsync on each commit. Not needed for safety: objects are "
        "durable before they are indexed and recovery re-indexes them after a crash.",
    )
    pool_size: int = Field(default=8, ge=1, le=200)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(
            ("sqlite:///", "postgresql://", "postgres://", "postgresql+psycopg://")
        ):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value


class LifecycleRule(BaseModel):
    """Studies matching every condition given move to tier ``to``."""

    model_config = ConfigDict(extra="forbid")

    to: str = Field(description="The tier the studies move to")
    older_than_days: float | None = Field(default=None, ge=0, description="Stored longer ago than this")
    not_accessed_days: float | None = Field(
        default=None, ge=0, description="Not retrieved or viewed for this long (or never, when stored before)"
    )
    modality: str | None = Field(default=None, max_length=16, description="With a series of this modality")

    @model_validator(mode="after")
    def _some_age(self) -> LifecycleRule:
        if self.older_than_days is None and self.not_accessed_days is None:
            raise ValueError("a lifecycle rule needs older_than_days or not_accessed_days")
        return self


class RetentionRule(BaseModel):
    """Studies stored longer ago than ``older_than_days`` (of ``modality``, when given) are deleted."""

    model_config = ConfigDict(extra="forbid")

    older_than_days: float = Field(gt=0)
    modality: str | None = Field(default=None, max_length=16)


class StorageSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        default=None,
        description="Blob store URL: file:///PATH, or s3://BUCKET/PREFIX for an S3-compatible object store. "
        "Default: file://DATA_DIR/objects.",
    )
    replica_url: str | None = Field(
        default=None,
        description="A second blob store (file:///PATH or s3://BUCKET/PREFIX, the s3_* settings apply to "
        "both) that receives a copy of every object before it is acknowledged; reads fall back to it. "
        "Default: none.",
    )
    s3_endpoint: str | None = Field(
        default=None,
        description="The S3 service's address (https://minio.example:9000) when it is not AWS; path-style "
        "requests are used with it.",
    )
    s3_region: str | None = Field(default=None, description="The bucket's region (AWS: eu-west-1...).")
    s3_access_key_id: str | None = Field(
        default=None,
        description="Credentials; unset: the AWS_* environment variables, ~/.aws or the machine's role.",
    )
    s3_secret_access_key: SecretStr | None = Field(default=None, description="The access key's secret.")
    compression: Codec = Field(
        default=Codec.JPEG_LS,
        description="Lossless compression of uncompressed pixel data after it is stored: jpeg-ls, j2k, "
        "htj2k or none. Each result is decoded and compared pixel for pixel before it replaces the original.",
    )
    s3_part_size_mib: int = Field(
        default=16, ge=5, le=5120, description="Objects larger than this are uploaded in parts of this size."
    )

    first_tier: str = Field(
        default="hot", pattern=r"^[a-z0-9][a-z0-9-]{0,31}$", description="The name of storage.url's tier."
    )
    tiers: dict[str, str] = Field(
        default_factory=dict,
        description='More stores, by name: {"cold": "s3://archive-cold/site-a"}. Objects move there by the '
        "lifecycle rules; S3 tiers use the s3_* settings.",
    )
    lifecycle: list[LifecycleRule] = Field(
        default_factory=list,
        description="Rules moving studies between tiers, in order: the first that matches.",
    )
    retention: list[RetentionRule] = Field(
        default_factory=list, description="Rules deleting studies past an age (audited)."
    )
    lifecycle_interval_minutes: float = Field(
        default=60, gt=0, le=10_080, description="How often a running archive applies the rules."
    )

    @field_validator("url", "replica_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        return value if value is None else _store_url(value)

    @field_validator("tiers")
    @classmethod
    def _check_tiers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, url in value.items():
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,31}", name):
                raise ValueError(f"tier name {name!r}: 1-32 of a-z, 0-9 and -, a letter or digit first")
            _store_url(url)
        return value

    @model_validator(mode="after")
    def _check_rules(self) -> StorageSettings:
        if self.first_tier in self.tiers:
            raise ValueError(f"tier {self.first_tier!r} is storage.url's (first_tier): name the others apart")
        known = {self.first_tier, *self.tiers}
        for rule in self.lifecycle:
            if rule.to not in known:
                raise ValueError(
                    f"lifecycle rule to {rule.to!r}: no such tier (tiers: {', '.join(sorted(known))})"
                )
        return self

    @field_validator("s3_endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("an http:// or https:// address")
        return value


_S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _store_url(value: str) -> str:
    if value.startswith("file://"):
        return value
    if value.startswith("s3://"):
        bucket = value[len("s3://") :].partition("/")[0]
        if not _S3_BUCKET.fullmatch(bucket):
            raise ValueError(f"s3://BUCKET/PREFIX: {bucket!r} is not a bucket name (3-63 of a-z 0-9 . -)")
        return value
    raise ValueError(f"{value!r}: must start with file:// or s3://")


class IngestSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duplicate_policy: DuplicatePolicy = Field(
        default=DuplicatePolicy.REPLACE,
        description="An object whose SOP Instance UID is stored with different bytes: replace (keep the "
        "newest, record the replacement), keep (keep the stored one) or reject (failure status).",
    )
    workers: int = Field(default=4, ge=1, le=64, description="Threads for blocking ingest work.")


class NetworkSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_associations: int = Field(
        default=64, ge=1, le=10_000, description="DICOM associations served at once; more are refused."
    )
    max_pdu_length: int = Field(
        default=256 * 1024,
        ge=4096,
        le=16 * 1024 * 1024,
        description="Largest PDU accepted (advertised to peers); bigger PDUs mean faster transfers.",
    )
    idle_timeout: float = Field(default=300.0, gt=0, description="Seconds without a PDU before an A-ABORT.")
    max_async_operations: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="Requests a peer may have outstanding at once when it negotiates an asynchronous "
        "operations window (PS3.7 D.3.3.3); peers that do not negotiate one send one at a time.",
    )
    transfer_syntaxes: list[str] = Field(
        default_factory=list,
        description="Transfer syntax UIDs in order of preference: of those a peer offers for a presentation "
        "context, the first listed here is accepted. Empty (the default): storage takes the sender's own "
        "first choice (objects are kept as received), other services explicit, then implicit VR LE.",
    )
    calling_ae_check: Literal["any", "registered", "registered_host"] = Field(
        default="any",
        description="Which peers may open an association: any calling AE title; only AE titles in the remote "
        "AE registry (lightbox ae add); or only those, from the host registered for them.",
    )

    unknown_ae_permissions: list[str] = Field(
        default_factory=lambda: ["echo", "store"],
        description="What a calling AE title that is not in the registry may do when calling_ae_check is "
        "'any': any of echo, store, find, get, move. The default lets modalities send images and nothing "
        "more; an empty list refuses unknown AEs (as calling_ae_check = 'registered' does).",
    )

    @field_validator("unknown_ae_permissions")
    @classmethod
    def _check_unknown_ae_permissions(cls, value: list[str]) -> list[str]:
        from lightbox.domain.accounts import parse_ae_permissions
        from lightbox.domain.errors import InvalidQuery

        try:
            parse_ae_permissions(value)
        except InvalidQuery as exc:
            raise ValueError(exc.message) from None
        return value

    @field_validator("transfer_syntaxes")
    @classmethod
    def _check_transfer_syntaxes(cls, value: list[str]) -> list[str]:
        from pydicom.uid import UID_dictionary

        for uid in value:
            if UID_dictionary.get(uid, ("", ""))[1] != "Transfer Syntax":
                raise ValueError(f"{uid!r} is not a transfer syntax UID")
        return value


class DicomWebSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cors_origins: list[str] = Field(
        default_factory=list,
        description="Web origins (scheme://host[:port]) whose pages may call the HTTP API from a browser, "
        'such as a viewer served elsewhere; ["*"] allows any. Empty (the default): none.',
    )

    qido_max_results: int = Field(
        default=1000,
        ge=1,
        le=10_000,
        description="Most matches one QIDO-RS response holds, whatever its limit; a search with more "
        "answers this many and a Warning header, and the client asks for the rest with offset.",
    )


class SecuritySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_hours: float = Field(
        default=12.0, gt=0, le=24 * 30, description="How long a web login lasts (its session cookie)."
    )
    login_attempts: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Failed logins of one user name within login_lockout_minutes after which its logins are "
        "refused (429) until the window has passed; one client address gets four times as many.",
    )
    login_lockout_minutes: float = Field(default=15.0, gt=0, le=24 * 60)
    oidc_issuer: str | None = Field(
        default=None,
        description="OpenID Connect issuer (https://login.example.org/realms/hospital): bearer tokens that "
        "are JWTs it signed are accepted beside API tokens. Unset: none are.",
    )
    oidc_audience: str | None = Field(
        default=None, description="The audience (aud) the archive's JWTs carry; required with oidc_issuer."
    )
    oidc_jwks_url: str | None = Field(
        default=None,
        description="Where the issuer's signing keys are; unset: the jwks_uri of its discovery document "
        "(<issuer>/.well-known/openid-configuration).",
    )
    oidc_username_claim: str = Field(default="preferred_username", description="The claim naming the user.")
    oidc_roles_claim: str = Field(
        default="roles",
        description="The claim listing the user's roles; a dotted path reaches into objects "
        "(realm_access.roles).",
    )
    oidc_role_map: dict[str, str] = Field(
        default_factory=dict,
        description='Claim values to Lightbox roles ({"pacs-admins": "admin"}); values named like a role '
        "(admin, radiologist, viewer, uploader) need no entry. The most powerful role a token maps to wins; "
        "a token that maps to none is refused.",
    )

    @model_validator(mode="after")
    def _check_oidc(self) -> SecuritySettings:
        if self.oidc_issuer and not self.oidc_audience:
            raise ValueError("security.oidc_issuer needs security.oidc_audience")
        roles = {"admin", "radiologist", "viewer", "uploader"}
        wrong = sorted(role for role in self.oidc_role_map.values() if role not in roles)
        if wrong:
            raise ValueError(
                f"security.oidc_role_map: {', '.join(wrong)} is not a role ({', '.join(sorted(roles))})"
            )
        return self


class TlsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    certificate: Path | None = Field(
        default=None,
        description="PEM certificate (chain) of the archive. With private_key: the HTTP port serves HTTPS "
        "only, and DICOM over TLS listens on dicom_port.",
    )
    private_key: Path | None = Field(default=None, description="PEM private key of the certificate.")
    dicom_port: int = Field(
        default=2762, ge=0, le=65535, description="DICOM over TLS (2762 is IANA's dicom-tls port)."
    )
    client_ca: Path | None = Field(
        default=None,
        description="PEM certificates of the authorities whose client certificates DICOM TLS peers must "
        "present; unset: peers need none.",
    )

    @model_validator(mode="after")
    def _check_pair(self) -> TlsSettings:
        if (self.certificate is None) != (self.private_key is None):
            raise ValueError("tls.certificate and tls.private_key go together: set both or neither")
        for path in (self.certificate, self.private_key, self.client_ca):
            if path is not None and not path.is_file():
                raise ValueError(f"{path} is not a readable file")
        return self

    @property
    def enabled(self) -> bool:
        return self.certificate is not None


class AuditSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        default=True,
        description="Record logins, queries, retrievals, views, stores, deletions, changes, exports and "
        "shares in the hash-chained audit trail (lightbox audit list / verify, GET /api/audit).",
    )
    flush_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Records are written in batches at most this far apart: a crash may lose this much of "
        "the trail (never an image).",
    )


# Where `make viewer` installs the viewer: build/viewer beside src/ in a source tree
INSTALLED_VIEWER = Path(__file__).resolve().parents[2] / "build" / "viewer"


class WebSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    viewer_dir: Path | None = Field(
        default=None,
        description="The diagnostic viewer's files (OHIF Viewer, installed by make viewer). Default: "
        "build/viewer of the source tree when it is installed there; without it the archive runs without "
        "the viewer.",
    )

    @field_validator("viewer_dir")
    @classmethod
    def _check_viewer_dir(cls, value: Path | None) -> Path | None:
        if value is not None and not (value / "index.html").is_file():
            raise ValueError(f"{value} holds no installed viewer (no index.html): run make viewer")
        return value

    def viewer(self) -> Path | None:
        """The viewer's folder, None when it is not installed."""
        if self.viewer_dir is not None:
            return self.viewer_dir
        return INSTALLED_VIEWER if (INSTALLED_VIEWER / "index.html").is_file() else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LIGHTBOX_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="forbid",
        validate_default=True,
    )

    data_dir: Path = Field(default=Path("lightbox-data"), description="Where the index and objects live.")
    host: str = Field(default="127.0.0.1", description="Address the DICOM and HTTP ports listen on.")
    dicom_port: int = Field(default=11112, ge=0, le=65535)
    http_port: int = Field(default=8080, ge=0, le=65535)
    ae_title: str = Field(default="LIGHTBOX", description="The archive's own AE title.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    dicomweb: DicomWebSettings = Field(default_factory=DicomWebSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    tls: TlsSettings = Field(default_factory=TlsSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    web: WebSettings = Field(default_factory=WebSettings)

    @field_validator("ae_title")
    @classmethod
    def _check_ae_title(cls, value: str) -> str:
        return validate_ae_title(value)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))

    # --- derived locations ------------------------------------------------------------------------------
    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{(self.data_dir / 'index.db').resolve()}"

    @property
    def storage_url(self) -> str:
        return self.storage.url or f"file://{(self.data_dir / 'objects').resolve()}"


class _TomlSource(PydanticBaseSettingsSource):
    """The TOML file named by ``--config`` or LIGHTBOX_CONFIG (set through ``_toml_path``)."""

    path: Path | None = None

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            with open(self.path, "rb") as f:
                return tomllib.load(f)
        except FileNotFoundError:
            raise ConfigurationError(f"configuration file {self.path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"configuration file {self.path} is not valid TOML: {exc}") from None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from the file, the environment and ``overrides`` (CLI flags; None means not given)."""
    import os

    path = config_file or (Path(os.environ["LIGHTBOX_CONFIG"]) if os.environ.get("LIGHTBOX_CONFIG") else None)
    _TomlSource.path = path
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        source = f" (file {path})" if path else ""
        raise ConfigurationError(f"invalid settings{source}: {problems}") from None
    finally:
        _TomlSource.path = None
