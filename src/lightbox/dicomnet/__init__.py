"""Asyncio DICOM networking: Upper Layer PDUs, association and DIMSE, independent of the archive."""
