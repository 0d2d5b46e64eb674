"""Pure DICOM format helpers shared by services and adapters (no archive state, no I/O)."""
