"""Which of the installed pixel codecs pydicom uses, where its own choice is slow."""

from __future__ import annotations

from pydicom.pixels import get_decoder
from pydicom.uid import JPEGLSLossless, JPEGLSNearLossless

# pydicom tries libjpeg (pylibjpeg) before CharLS (pyjpegls) for JPEG-LS; on a 512x512 CT image libjpeg
# took 75 ms and CharLS 10. JPEG-LS is what the archive compresses to by default, so every conversion for
# a peer, rendered image or frame decodes it.
_SLOW_JPEG_LS_DECODER = "pylibjpeg"


def prefer_fast_decoders() -> None:
    """Leave CharLS as the JPEG-LS decoder (idempotent)."""
    for syntax in (JPEGLSLossless, JPEGLSNearLossless):
        decoder = get_decoder(syntax)
        if _SLOW_JPEG_LS_DECODER in decoder.available_plugins and len(decoder.available_plugins) > 1:
            decoder.remove_plugin(_SLOW_JPEG_LS_DECODER)
