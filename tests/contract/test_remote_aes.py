"""The remote AE registry on every Index backend: what each AE may ask is kept with it."""

from __future__ import annotations

from lightbox.domain.accounts import ALL_AE_PERMISSIONS, AePermission
from lightbox.index.base import RemoteAE
from lightbox.index.sql import SqlIndex


def test_permissions_round_trip(index: SqlIndex) -> None:
    index.add_remote_ae(RemoteAE("CT1", "ct1.example.org", 104, "ward B", frozenset({AePermission.STORE})))
    index.add_remote_ae(RemoteAE("WS1", "10.0.0.5", 11112))
    index.add_remote_ae(RemoteAE("MUTE", "10.0.0.6", 104, "", frozenset()))
    assert index.get_remote_ae("CT1") == RemoteAE(
        "CT1", "ct1.example.org", 104, "ward B", frozenset({AePermission.STORE})
    )
    assert index.get_remote_ae("WS1").permissions == ALL_AE_PERMISSIONS  # type: ignore[union-attr]
    assert [(ae.ae_title, ae.permissions) for ae in index.list_remote_aes()] == [
        ("CT1", frozenset({AePermission.STORE})),
        ("MUTE", frozenset()),
        ("WS1", ALL_AE_PERMISSIONS),
    ]
