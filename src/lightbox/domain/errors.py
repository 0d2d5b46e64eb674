"""Domain errors that carry their DICOM status and HTTP code.

Adapters turn these into protocol answers in one place each: a C-STORE-RSP status, a STOW-RS
FailedSOPSequence reason, an HTTP problem+json. Services raise them; nothing else needs to know the mapping.
"""

from __future__ import annotations

from lightbox.domain import status


class LightboxError(Exception):
    """Base of every error the archive reports to a client."""

    dicom_status: int = status.PROCESSING_FAILURE
    http_status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidObject(LightboxError):
    """The object is not a DICOM object the archive can keep (malformed, missing or invalid UIDs)."""

    dicom_status = status.CANNOT_UNDERSTAND
    http_status = 400


class DataSetMismatch(LightboxError):
    """The data set contradicts what the transfer announced (for example its SOP Class)."""

    dicom_status = status.DATA_SET_DOES_NOT_MATCH_SOP_CLASS
    http_status = 409


class DuplicateRejected(LightboxError):
    """An object with this SOP Instance UID but different content exists and the policy rejects it."""

    dicom_status = status.DUPLICATE_SOP_INSTANCE
    http_status = 409


class OutOfResources(LightboxError):
    """The archive cannot store now (disk full, database unavailable); the sender may retry."""

    dicom_status = status.OUT_OF_RESOURCES
    http_status = 503


class InvalidQuery(LightboxError):
    """A query identifier or parameter the archive cannot interpret."""

    dicom_status = status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
    http_status = 400


class NotFound(LightboxError):
    """The requested patient, study, series, instance or remote AE does not exist."""

    dicom_status = status.UNABLE_TO_PROCESS
    http_status = 404


class Conflict(LightboxError):
    """The request contradicts the current state (for example an AE title registered twice)."""

    dicom_status = status.PROCESSING_FAILURE
    http_status = 409


class NotWritable(LightboxError):
    """A place the archive was asked to write to (an export's destination) cannot be written."""


class Forbidden(LightboxError):
    """The caller is known but may not do this (a role, or someone else's share link)."""

    dicom_status = status.REFUSED_NOT_AUTHORIZED
    http_status = 403


class ConfigurationError(LightboxError):
    """The settings are invalid; raised at start with a message that says what to fix."""
