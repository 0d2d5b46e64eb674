"""Blob stores: where the DICOM objects live. Only the composition root picks a backend."""
