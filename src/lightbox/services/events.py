"""In-process events that services publish and cross-cutting concerns (audit, routing, metrics) observe.

Services never call an observer by name; they publish. Handlers run synchronously in the publishing thread
and must be quick; a failing handler is logged and never fails the service call that published.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from lightbox.domain.actor import Actor
from lightbox.domain.shares import ShareLink

log = logging.getLogger(__name__)

E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class InstanceStored:
    source: Actor
    outcome: str
    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str
    size: int
    patient_id: str = ""


@dataclass(frozen=True, slots=True)
class InstanceReplaced:
    source: Actor
    sop_instance_uid: str
    old_sha256: str
    new_sha256: str
    study_instance_uid: str = ""
    patient_id: str = ""


@dataclass(frozen=True, slots=True)
class InstanceRejected:
    source: Actor
    reason: str
    dicom_status: int
    sop_instance_uid: str | None = None


@dataclass(frozen=True, slots=True)
class StudyQueried:
    source: Actor
    level: str
    keys: dict[str, Any]
    matches: int


@dataclass(frozen=True, slots=True)
class InstancesRetrieved:
    source: Actor
    study_instance_uids: tuple[str, ...]
    instances: int
    size: int = 0  # bytes of the objects as stored (a converted copy may differ)
    purpose: str = "retrieve"  # or "view": metadata and rendered images, for people rather than systems
    destination: str | None = None  # a C-MOVE's destination AE
    study_counts: tuple[int, ...] = ()  # instances of each study, in the order of study_instance_uids


@dataclass(frozen=True, slots=True)
class InstancesDeleted:
    """A study, series or instance was deleted (``level`` STUDY, SERIES or IMAGE, ``uid`` its unique key)."""

    source: Actor
    level: str
    uid: str
    patient_id: str
    study_instance_uid: str
    sop_instance_uids: tuple[str, ...]
    size: int


@dataclass(frozen=True, slots=True)
class LoginAttempted:
    """Someone tried to authenticate: a password login, an API token or JWT, a DICOM user identity."""

    source: Actor
    user: str | None  # the name given, when one was
    succeeded: bool
    method: str  # password, token, oidc, session, dicom-identity
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SettingsChanged:
    """An administrator changed users, tokens or remote AEs: ``what`` names the change, ``subject`` its
    object (a user name, a token label, an AE title)."""

    source: Actor
    what: str
    subject: str


@dataclass(frozen=True, slots=True)
class InstancesExported:
    """Instances were written out as files (``level`` PATIENT, STUDY, SERIES or IMAGE, ``uid`` its unique key;
    several values joined with a backslash, as DICOM joins them). UIDs are the stored ones, also when the
    files were de-identified."""

    source: Actor
    level: str
    uid: str
    study_instance_uids: tuple[str, ...]
    instances: int
    deidentified: bool
    destination: str
    size: int = 0  # bytes written (files found there already, identical, count as instances, not bytes)


@dataclass(frozen=True, slots=True)
class ShareChanged:
    """A share link was created, opened or revoked (``what``)."""

    source: Actor
    what: str
    link: ShareLink


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[type, list[Callable[[Any], None]]] = {}
        self._lock = threading.Lock()

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]) -> None:
        with self._lock:
            self._handlers.setdefault(event_type, []).append(handler)

    def publish(self, event: object) -> None:
        for handler in self._handlers.get(type(event), ()):
            try:
                handler(event)
            except Exception:
                log.exception("event handler %r failed on %s", handler, type(event).__name__)
