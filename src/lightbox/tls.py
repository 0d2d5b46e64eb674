"""TLS contexts for the HTTP and DICOM ports: TLS 1.2 and 1.3 only, forward-secret AEAD ciphers only (the
BCP 195 / RFC 9325 recommendations, as PS3.15's BCP 195 RFC 8996 TLS profile has them), optionally asking
DICOM peers for a client certificate from a configured authority."""

from __future__ import annotations

import ssl
from pathlib import Path

# TLS 1.2 suites (TLS 1.3's are all AEAD and forward-secret already)
_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL:!MD5:!SHA1"


def server_context(certificate: Path, private_key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """A server context on the archive's certificate; with ``client_ca``, peers must present a certificate
    it signed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.load_cert_chain(certificate, private_key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=client_ca)
    return context
