"""Lightbox: an open-source PACS."""

__version__ = "0.1.0"

# Identifies Lightbox in File Meta Information and association negotiation (PS3.7 D.3.3.2).
# Under the 2.25 root (PS3.5 B.2): a UUID-derived root, so no organisation root is needed.
IMPLEMENTATION_CLASS_UID = "2.25.153346584017226473590738315186930271842"
IMPLEMENTATION_VERSION_NAME = "LIGHTBOX_010"
