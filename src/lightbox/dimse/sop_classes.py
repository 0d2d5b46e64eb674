"""SOP classes and transfer syntaxes the DICOM services accept, from pydicom's UID dictionary."""

from __future__ import annotations

from pydicom.uid import UID_dictionary

VERIFICATION = "1.2.840.10008.1.1"

# Every storage SOP class in the standard (PS3.4 B.5), retired ones included: old modalities still send them.
STORAGE_SOP_CLASSES = frozenset(
    uid
    for uid, (name, kind, *_rest) in UID_dictionary.items()
    if kind == "SOP Class" and "Storage" in name and "Commitment" not in name and "Media" not in name
)

TRANSFER_SYNTAXES = frozenset(
    uid for uid, (_name, kind, *_rest) in UID_dictionary.items() if kind == "Transfer Syntax"
)

# Verification: any of these. Storage: the sender's own first choice (objects are kept as received, and
# a sender asked to decompress may not be able to).
VERIFICATION_PREFERENCE = (
    "1.2.840.10008.1.2.1",  # explicit VR little endian
    "1.2.840.10008.1.2",  # implicit VR little endian
)
