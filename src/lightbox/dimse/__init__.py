"""The DIMSE adapter: binds the DICOM network layer to the archive's services, and nothing below them."""
