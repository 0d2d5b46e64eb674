"""A frame request whose client goes away while the object is being opened leaves no file open; the
clean-up, run as the opening's done-callback, logs no error of its own when the opening failed or never
ran."""

from __future__ import annotations

import io
import logging
from concurrent.futures import Future
from typing import Any

import pytest

from lightbox.dicomweb.frames import PixelData
from lightbox.dicomweb.wado import _close_opened

_LAYOUT = PixelData("1.2.840.10008.1.2.1", 1, 16, 16, False)


def test_an_object_opened_after_the_client_left_is_closed() -> None:
    opening: Future[Any] = Future()
    opening.add_done_callback(_close_opened)
    f = io.BytesIO(b"object")
    opening.set_result((f, _LAYOUT, b"frame"))
    assert f.closed


@pytest.mark.parametrize("outcome", ["failed", "cancelled"])
def test_an_opening_that_failed_or_never_ran_has_nothing_to_close(
    outcome: str, caplog: pytest.LogCaptureFixture
) -> None:
    opening: Future[Any] = Future()
    opening.add_done_callback(_close_opened)
    with caplog.at_level(logging.ERROR, logger="concurrent.futures"):
        if outcome == "failed":
            opening.set_exception(OSError("the object is gone"))
        else:
            assert opening.cancel()
    # concurrent.futures logs "exception calling callback" when a done-callback raises
    assert [r.getMessage() for r in caplog.records] == []
