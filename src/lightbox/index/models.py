"""SQLAlchemy Core tables of the index. Schema changes go through an Alembic migration in ``migrations/``.

Every column that a common search filters on has an index; ``*_fold`` columns hold the case-insensitive
form of person names (``domain.values.fold_name``) so both engines match them the same way. String columns
use the C collation on PostgreSQL (``text_pattern_ops`` indexes) so that prefix wildcards use the index.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite's rowid alias must be INTEGER


def _pattern_index(name: str, column: Column[str]) -> Index:
    """A b-tree index that also serves ``LIKE 'prefix%'`` on PostgreSQL (SQLite: with case_sensitive_like)."""
    return Index(name, column, postgresql_ops={column.name: "text_pattern_ops"})


patients = Table(
    "patients",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("patient_id", String(64), nullable=False),
    Column("issuer_of_patient_id", String(64), nullable=False),
    Column("patient_name", Text, nullable=False),
    Column("patient_name_fold", Text, nullable=False),
    Column("patient_birth_date", String(8)),
    Column("patient_sex", String(16), nullable=False),
    Column("attrs", JSON, nullable=False),
    Column("num_studies", Integer, nullable=False, default=0),
    Column("num_series", Integer, nullable=False, default=0),
    Column("num_instances", Integer, nullable=False, default=0),
    Column("size_bytes", BigInteger, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("patient_id", "issuer_of_patient_id"),
)
_pattern_index("ix_patients_patient_id", patients.c.patient_id)
_pattern_index("ix_patients_patient_name", patients.c.patient_name)
_pattern_index("ix_patients_patient_name_fold", patients.c.patient_name_fold)
Index("ix_patients_patient_birth_date", patients.c.patient_birth_date)

studies = Table(
    "studies",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("patient_fk", Id, ForeignKey("patients.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("study_instance_uid", String(64), nullable=False, unique=True),
    Column("study_date", String(8)),
    Column("study_time", String(13)),
    Column("study_datetime", String(21)),
    Column("accession_number", String(16), nullable=False),
    Column("study_id", String(16), nullable=False),
    Column("study_description", Text, nullable=False),
    Column("referring_physician_name", Text, nullable=False),
    Column("referring_physician_name_fold", Text, nullable=False),
    Column("modalities_in_study", Text, nullable=False, default=""),
    Column("attrs", JSON, nullable=False),
    Column("num_series", Integer, nullable=False, default=0),
    Column("num_instances", Integer, nullable=False, default=0),
    Column("size_bytes", BigInteger, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # When it was last retrieved or viewed (within the hour: the archive writes it once an hour at most)
    Column("accessed_at", DateTime(timezone=True), nullable=True),
)
Index("ix_studies_study_date", studies.c.study_date)
Index("ix_studies_study_datetime", studies.c.study_datetime)
_pattern_index("ix_studies_accession_number", studies.c.accession_number)
Index("ix_studies_study_id", studies.c.study_id)
_pattern_index("ix_studies_referring_physician_name_fold", studies.c.referring_physician_name_fold)
Index("ix_studies_updated_at", studies.c.updated_at)

series = Table(
    "series",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("study_fk", Id, ForeignKey("studies.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("series_instance_uid", String(64), nullable=False, unique=True),
    Column("modality", String(16), nullable=False),
    Column("series_number", Integer),
    Column("series_description", Text, nullable=False),
    Column("series_date", String(8)),
    Column("series_time", String(13)),
    Column("body_part_examined", String(16), nullable=False),
    Column("performed_procedure_step_start_date", String(8)),
    Column("attrs", JSON, nullable=False),
    Column("num_instances", Integer, nullable=False, default=0),
    Column("size_bytes", BigInteger, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_series_modality_study_fk", series.c.modality, series.c.study_fk)
Index("ix_series_performed_procedure_step_start_date", series.c.performed_procedure_step_start_date)

instances = Table(
    "instances",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("series_fk", Id, ForeignKey("series.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("sop_instance_uid", String(64), nullable=False, unique=True),
    Column("sop_class_uid", String(64), nullable=False),
    Column("instance_number", Integer),
    Column("content_date", String(8)),
    Column("content_time", String(13)),
    Column("number_of_frames", Integer),
    Column("rows", Integer),
    Column("columns", Integer),
    Column("transfer_syntax_uid", String(64), nullable=False),
    Column("blob_key", String(128), nullable=False, unique=True),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("ingested_at", DateTime(timezone=True), nullable=False),
    Column("source", Text, nullable=False, default=""),
    Column("stored_by", String(64), nullable=True),  # the archive user who stored it, when one did
    # Why lossless compression left this object as it is ("no pixel data"...); NULL: not tried (or compressed)
    Column("compression", String(200), nullable=True),
    Column("tier", String(32), nullable=True),  # the storage tier its object was moved to; NULL: the first
    Column("attrs", JSON, nullable=False),
    # [[tag, VR, element offset in the object], ...] of the top-level values left out of attrs (pixel data,
    # other bulk data); offset -1 when unknown (a deflated data set); NULL when indexed before it was kept
    Column("bulk", JSON),
)
Index("ix_instances_sop_class_uid_series_fk", instances.c.sop_class_uid, instances.c.series_fk)
Index("ix_instances_ingested_at", instances.c.ingested_at)

instance_replacements = Table(
    "instance_replacements",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("sop_instance_uid", String(64), nullable=False, index=True),
    Column("old_blob_key", String(128), nullable=False),
    Column("old_sha256", String(64), nullable=False),
    Column("new_blob_key", String(128), nullable=False),
    Column("new_sha256", String(64), nullable=False),
    Column("source", Text, nullable=False),
    Column("replaced_at", DateTime(timezone=True), nullable=False),
)

# Objects whose instance rows a delete removed, recorded in the delete's own transaction. The objects are
# removed after that commit and then the record; one left here (a crash came between) is finished by start-up
# recovery, which must not index such an object again: a delete once acknowledged stays done.
pending_deletions = Table(
    "pending_deletions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("blob_key", String(128), nullable=False, unique=True),
    Column("sop_instance_uid", String(64), nullable=False),
    Column("deleted_at", DateTime(timezone=True), nullable=False),
)

remote_aes = Table(
    "remote_aes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("ae_title", String(16), nullable=False, unique=True),
    Column("host", Text, nullable=False),
    Column("port", Integer, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # domain.accounts.AePermission values, comma-separated; AEs registered before it had them all
    Column("permissions", Text, nullable=False, server_default="echo,store,find,get,move"),
)

# People and programs (domain/accounts.py). Passwords are kept as Argon2id hashes, tokens as SHA-256 of
# their 256 random bits: neither can be read back.
users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", Text, nullable=True),  # None: no password login (tokens only)
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_fk", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("label", String(64), nullable=False),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("user_fk", "label"),
)

# Web logins: the session cookie's and the CSRF token's SHA-256, never the values themselves
sessions = Table(
    "sessions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("csrf_sha256", String(64), nullable=False),
    Column("user_fk", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)

# Content tables, children first: the order ``reindex`` clears them in.
CONTENT_TABLES = (instances, series, studies, patients)

# The audit trail: append-only (triggers refuse UPDATE and DELETE), each record chained to the one before by
# its hash (domain/audit.py). ``seq`` is given by the writer, 1, 2, 3... under the lock of audit_head's row.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Id, primary_key=True, autoincrement=False),
    Column("time", DateTime(timezone=True), nullable=False, index=True),
    Column("action", String(16), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("protocol", String(32), nullable=False),
    Column("user_name", String(64), nullable=True, index=True),
    Column("ae_title", String(16), nullable=True),
    Column("address", String(64), nullable=True),
    Column("patient_id", String(64), nullable=True, index=True),
    Column("study_instance_uid", String(64), nullable=True, index=True),
    Column("instances", Integer, nullable=False),
    Column("detail", Text, nullable=False),
    Column("hash", String(64), nullable=False),
)

# One row: the last record's sequence number and hash. Appending locks it, so that writers on several nodes
# extend one chain; and deleting the newest records shows, since the head no longer matches them.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Id, nullable=False),
    Column("hash", String(64), nullable=False),
)

# Share links: one study each, for someone outside the archive's users; the token's SHA-256 only
share_links = Table(
    "share_links",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("study_instance_uid", String(64), nullable=False, index=True),
    Column("created_by", String(64), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("deidentify", Boolean, nullable=False),
    Column("pseudonym_key", String(64), nullable=False),  # hex: keys the share's de-identified pseudonyms
    Column("note", Text, nullable=False),
)
