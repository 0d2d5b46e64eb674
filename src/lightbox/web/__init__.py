"""The web app: the diagnostic viewer (OHIF, served as installed) and Lightbox's own pages around it."""
