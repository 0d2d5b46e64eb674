"""Keyed replacements for UIDs and patient identities: one key, one answer for each original.

PS3.15 E.1.1 asks that replaced UIDs stay internally consistent: every instance of a study must still point to
the same new Study, Series and Frame of Reference UIDs. A table of what was replaced would have to be kept and
shared; an HMAC needs only its key. Whoever holds the key gets the same UIDs and pseudonyms again (two exports
of one patient line up); without it they cannot be reversed or guessed from the originals.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

MIN_KEY_BYTES = 16

_UUID_VERSION_MASK = 0xF << 76
_UUID_VERSION_8 = 0x8 << 76  # RFC 9562 5.8: "custom" UUIDs, whose bits the maker chooses
_UUID_VARIANT_MASK = 0x3 << 62
_UUID_VARIANT_RFC = 0x2 << 62


class Pseudonyms:
    """New UIDs and patient pseudonyms derived from the originals with HMAC-SHA256 and a secret key."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"a de-identification key needs at least {MIN_KEY_BYTES} bytes")
        self._key = key

    @classmethod
    def random(cls) -> Pseudonyms:
        """A fresh key: the replacements agree within this object's use and never with another run."""
        return cls(secrets.token_bytes(32))

    def _digest(self, purpose: bytes, value: str) -> bytes:
        # The purpose keeps a UID and a patient ID that happen to be equal strings apart.
        return hmac.new(self._key, purpose + b"\x00" + value.encode("utf-8"), hashlib.sha256).digest()

    def uid(self, original: str) -> str:
        """The replacement of ``original``: ``2.25.`` and the integer of a UUID (PS3.5 B.2), here a version 8
        UUID made of the HMAC's first 122 bits; at most 44 characters."""
        value = int.from_bytes(self._digest(b"uid", original)[:16], "big")
        value = (value & ~_UUID_VERSION_MASK) | _UUID_VERSION_8
        value = (value & ~_UUID_VARIANT_MASK) | _UUID_VARIANT_RFC
        return f"2.25.{value}"

    def patient(self, patient_id: str) -> str:
        """The pseudonym of a patient, for Patient ID and Patient's Name: ``ANON-`` and 12 hex digits (48
        bits: two patients of one export sharing one pseudonym is not a practical concern)."""
        return "ANON-" + self._digest(b"patient", patient_id).hex()[:12].upper()
