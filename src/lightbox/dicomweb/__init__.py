"""DICOMweb (PS3.18) under /dicom-web: STOW-RS, QIDO-RS, WADO-RS, WADO-URI; thin service adapters."""
