"""Who acts on the archive: the protocol a request came through, the user or AE behind it, and its address.

Services receive it from the adapters and pass it on in their events, so that the audit trail can say who
did what from where, and the index can remember where each object came from.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Actor:
    protocol: str  # dimse, stow, qido, wado, api, cli, import, recovery, share...
    user: str | None = None  # the archive user authenticated, if any
    ae_title: str | None = None  # the calling AE title, on DIMSE
    address: str | None = None  # the peer's network address
    origin: str | None = None  # where a local actor took the data from (an imported file), not who it is

    def __str__(self) -> str:
        """The compact form kept as an instance's source: ``dimse:CT1@10.0.0.7``, ``stow:alice@10.0.0.5``,
        ``dimse:CT1/alice@10.0.0.7`` (an AE that named a user), ``import:/path/of/the/file``."""
        if self.origin:
            return f"{self.protocol}:{self.origin}"
        who = "/".join(part for part in (self.ae_title, self.user) if part)
        if self.address:
            who = f"{who}@{self.address}" if who else self.address
        return f"{self.protocol}:{who}" if who else self.protocol


def as_actor(source: Actor | str) -> Actor:
    """Callers inside the process (the CLI, start-up recovery, tests) may name themselves with a label."""
    return source if isinstance(source, Actor) else Actor(source)
