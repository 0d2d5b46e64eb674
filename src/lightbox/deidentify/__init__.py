"""De-identification: PS3.15 Annex E's Basic Application Level Confidentiality Profile.

Pure functions over pydicom data sets (``deidentify_dataset``) and DICOM JSON (``deidentify_json``); no I/O.
The Retain UIDs Option is the only option offered. What is removed and replaced, and what is not (burned-in
text in the pixel data), is in ``docs/deidentification.md``.
"""

from lightbox.deidentify.dataset import deidentify_dataset
from lightbox.deidentify.dicom_json import deidentify_json
from lightbox.deidentify.keys import Pseudonyms
from lightbox.deidentify.profile import DeidentifyOptions

__all__ = ["DeidentifyOptions", "Pseudonyms", "deidentify_dataset", "deidentify_json"]
