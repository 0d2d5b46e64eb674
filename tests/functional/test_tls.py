"""TLS on both ports of ``lightbox serve``, with a throwaway certificate authority (trustme): HTTPS only on
the HTTP port, DICOM over TLS on its own port (PS3.15 B.1) beside the plain one, client certificates
required when configured, and nothing older than TLS 1.2."""

from __future__ import annotations

import io
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification

from lightbox.app import build_archive
from lightbox.config import load_settings
from lightbox.domain.accounts import Role
from tests.support.dicom import make_dataset, to_part10
from tests.support.server import RunningServer, free_port, running_server

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _tls_env(
    tmp_path: Path, ca: trustme.CA, client_ca: trustme.CA | None = None
) -> tuple[dict[str, str], int]:
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    server_cert.private_key_pem.write_to_path(key)
    server_cert.cert_chain_pems[0].write_to_path(cert)
    port = free_port()
    env = {
        "LIGHTBOX_TLS_CERTIFICATE": str(cert),
        "LIGHTBOX_TLS_PRIVATE_KEY": str(key),
        "LIGHTBOX_TLS_DICOM_PORT": str(port),
    }
    if client_ca is not None:
        trusted = tmp_path / "client-ca.pem"
        client_ca.cert_pem.write_to_path(trusted)
        env["LIGHTBOX_TLS_CLIENT_CA"] = str(trusted)
    return env, port


@pytest.fixture(scope="module")
def server(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, int]]:
    base = tmp_path_factory.mktemp("tls")
    env, port = _tls_env(base, ca)
    archive = build_archive(load_settings(data_dir=base / "data"))
    archive.accounts.add_user("alice", Role.VIEWER, PASSWORD)
    archive.close()
    with running_server(base / "data", env=env, https=True) as running:
        yield running, port


def _client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(context)
    return context


def test_https_only(server: tuple[RunningServer, int], ca: trustme.CA) -> None:
    running, _ = server
    url = running.base_url
    with httpx.Client(verify=_client_context(ca), headers=running.headers) as client:
        assert client.get(url + "/api/health").status_code == 200
        assert client.get(url + "/api/me").json()["user"] == "tester"
    with pytest.raises(httpx.HTTPError):
        httpx.get(url.replace("https://", "http://") + "/api/health", timeout=5)  # plain HTTP to it
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/api/health", timeout=5)  # a certificate the client does not trust


def test_old_protocols_are_refused(server: tuple[RunningServer, int], ca: trustme.CA) -> None:
    running, _ = server
    old = _client_context(ca)
    old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("ALL:@SECLEVEL=0")
    with pytest.raises(httpx.ConnectError):
        httpx.get(running.base_url + "/api/health", verify=old, timeout=5)


def test_login_cookie_is_secure_over_https(server: tuple[RunningServer, int], ca: trustme.CA) -> None:
    running, _ = server
    with httpx.Client(verify=_client_context(ca)) as client:
        answer = client.post(
            running.base_url + "/api/login", json={"username": "alice", "password": PASSWORD}
        )
        assert answer.status_code == 200, answer.text
        session = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("lightbox_session="))
        assert "Secure" in session and "HttpOnly" in session


def _echo(port: int, context: ssl.SSLContext | None) -> int | None:
    ae = AE(ae_title="TLSECHO")
    ae.add_requested_context(Verification)
    tls = (context, "127.0.0.1") if context is not None else None
    assoc = ae.associate("127.0.0.1", port, ae_title="LIGHTBOX", tls_args=tls)
    if not assoc.is_established:
        return None
    status = int(assoc.send_c_echo().Status)
    assoc.release()
    return status


def test_dicom_over_tls_beside_the_plain_port(server: tuple[RunningServer, int], ca: trustme.CA) -> None:
    running, tls_port = server
    assert _echo(tls_port, _client_context(ca)) == 0
    assert _echo(running.dicom_port, None) == 0  # the plain port still serves
    assert _echo(tls_port, None) is None  # plain DICOM on the TLS port: no association


def test_c_store_over_tls_is_stored_whole(server: tuple[RunningServer, int], ca: trustme.CA) -> None:
    running, tls_port = server
    blob = to_part10(make_dataset(Rows=512, Columns=512, PixelData=bytes(range(256)) * 2048))
    ds = dcmread(io.BytesIO(blob))  # 512 kB: many TLS records, many PDUs
    ae = AE(ae_title="TLSSTORE")
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate(
        "127.0.0.1", tls_port, ae_title="LIGHTBOX", tls_args=(_client_context(ca), "127.0.0.1")
    )
    assert assoc.is_established
    assert int(assoc.send_c_store(ds).Status) == 0
    assoc.release()
    status, found = running.get_json(f"/api/instances/{ds.SOPInstanceUID}")
    assert status == 200 and found["sop_instance_uid"] == ds.SOPInstanceUID


def test_dicom_tls_client_certificates(ca: trustme.CA, tmp_path: Path) -> None:
    client_ca = trustme.CA()
    env, port = _tls_env(tmp_path, ca, client_ca)
    with running_server(tmp_path / "data", env=env, https=True):
        assert _echo(port, _client_context(ca)) is None  # no client certificate
        with_cert = _client_context(ca)
        client_ca.issue_cert("modality.example.org").configure_cert(with_cert)
        assert _echo(port, with_cert) == 0
        stranger = _client_context(ca)
        trustme.CA().issue_cert("stranger.example.org").configure_cert(stranger)
        assert _echo(port, stranger) is None  # signed by another authority
