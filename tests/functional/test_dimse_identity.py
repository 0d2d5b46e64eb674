"""DICOM User Identity negotiation (PS3.7 D.3.3.7) against ``lightbox serve`` with pynetdicom: a user
name and passcode of an archive user adds what the user's role may do to what the calling AE may; wrong
credentials reject the association."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.pdu_primitives import UserIdentityNegotiation
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind, Verification

from lightbox.app import build_archive
from lightbox.config import load_settings
from lightbox.domain.accounts import Role
from tests.support.dicom import part10
from tests.support.server import RunningServer, running_server

FIND = StudyRootQueryRetrieveInformationModelFind
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("identity") / "data"
    archive = build_archive(load_settings(data_dir=data))
    archive.ingest.ingest([part10()], "t")
    archive.accounts.add_user("vera", Role.VIEWER, PASSWORD)
    archive.accounts.add_user("ulla", Role.UPLOADER, PASSWORD)
    archive.close()
    with running_server(data, env={"LIGHTBOX_NETWORK_UNKNOWN_AE_PERMISSIONS": "[]"}) as running:
        yield running


def _associate(server: RunningServer, name: str | None, password: str, response: bool = True) -> object:
    ae = AE(ae_title="STRANGER")  # not registered: unknown AEs may do nothing on this server
    ae.add_requested_context(Verification)
    ae.add_requested_context(FIND)
    negotiation = []
    if name is not None:
        identity = UserIdentityNegotiation()
        identity.user_identity_type = 2
        identity.positive_response_requested = response
        identity.primary_field = name.encode()
        identity.secondary_field = password.encode()
        negotiation.append(identity)
    return ae.associate("127.0.0.1", server.dicom_port, ae_title="LIGHTBOX", ext_neg=negotiation)


def _find(assoc: object) -> list[int]:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    return [int(s.Status) for s, _ in assoc.send_c_find(query, FIND) if s]  # type: ignore[attr-defined]


def test_a_users_credentials_open_what_the_role_may(server: RunningServer) -> None:
    assoc = _associate(server, "vera", PASSWORD)
    assert assoc.is_established  # type: ignore[attr-defined]
    assert assoc.acceptor.user_identity is not None  # type: ignore[attr-defined]  # the positive response
    accepted = {str(c.abstract_syntax) for c in assoc.accepted_contexts}  # type: ignore[attr-defined]
    assert accepted == {str(Verification), str(FIND)}
    assert _find(assoc) == [0xFF00, 0x0000]
    assoc.release()  # type: ignore[attr-defined]


def test_an_uploader_may_not_query(server: RunningServer) -> None:
    assoc = _associate(server, "ulla", PASSWORD)
    assert assoc.is_established  # type: ignore[attr-defined]
    assert {str(c.abstract_syntax) for c in assoc.accepted_contexts} == {str(Verification)}  # type: ignore[attr-defined]
    assoc.release()  # type: ignore[attr-defined]


def test_wrong_or_missing_credentials_are_refused(server: RunningServer) -> None:
    for name, password in (("vera", "not the password"), ("nobody", PASSWORD)):
        assoc = _associate(server, name, password)
        assert assoc.is_rejected, name  # type: ignore[attr-defined]
    assert _associate(server, None, "").is_rejected  # type: ignore[attr-defined]  # unknown, no identity
    assert server.log().count("wrong user identity") >= 2
