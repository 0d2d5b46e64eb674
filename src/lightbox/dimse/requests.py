"""What the query/retrieve SCPs share: reading the identifier, resolving a selection, C-CANCEL bookkeeping."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import Executor

from pydicom.dataset import Dataset

from lightbox.dicomnet import dimse
from lightbox.dicomnet.association import Association, Message
from lightbox.dimse.identifiers import decode_identifier, selection
from lightbox.domain.errors import InvalidQuery
from lightbox.domain.levels import Level
from lightbox.index.base import InstanceLocation
from lightbox.services.retrieve import RetrieveService


def read_identifier(association: Association, message: Message) -> tuple[Dataset, Level]:
    """The request's identifier, decoded in its context's transfer syntax, and its Query/Retrieve Level.

    Raises InvalidQuery (0xA900) when it cannot be decoded or names no valid level.
    """
    try:
        identifier = decode_identifier(message.dataset or b"", association.contexts[message.context_id][1])
        return identifier, Level(str(identifier.get("QueryRetrieveLevel", "")).strip())
    except Exception as exc:
        raise InvalidQuery(f"unreadable identifier: {exc}") from exc


async def resolve_selection(
    association: Association, message: Message, retrieve: RetrieveService, executor: Executor
) -> list[InstanceLocation]:
    """The stored instances a C-GET or C-MOVE identifier selects (PS3.4 C.4.2.2.1, C.4.3.2.1)."""
    identifier, level = read_identifier(association, message)
    keys = selection(identifier, level)
    return await asyncio.get_running_loop().run_in_executor(
        executor, lambda: list(retrieve.resolve(level, keys))
    )


class Cancellations:
    """C-FIND, C-GET and C-MOVE requests in progress, and which of them a C-CANCEL-RQ named (PS3.7 9.3.2.3).

    A request checks its flag between matches or sub-operations, in the event loop, so nothing it uses is
    touched from two threads at once.
    """

    def __init__(self) -> None:
        self._flags: dict[tuple[int, int], bool] = {}

    @contextlib.contextmanager
    def track(self, association: Association, command: dimse.CommandFields) -> Iterator[Callable[[], bool]]:
        """While the request runs: a function telling whether it was cancelled."""
        key = (id(association), dimse.message_id(command))
        self._flags[key] = False
        try:
            yield lambda: self._flags.get(key, False)
        finally:
            self._flags.pop(key, None)

    def cancel(self, association: Association, command: dimse.CommandFields) -> None:
        key = (id(association), int(command.get("MessageIDBeingRespondedTo") or 0))
        if key in self._flags:
            self._flags[key] = True
