"""``lightbox serve``'s association policy: calling AE titles checked against the registry, and the
transfer syntax preference order from the settings."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGLSLossless
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification

from tests.support.dcmtk import ENV, require
from tests.support.server import lightbox_command, running_server


def _echo(port: int, calling_ae: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require("echoscu"), "-aet", calling_ae, "-aec", "LIGHTBOX", "127.0.0.1", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )


def _register(data: Path, title: str, host: str) -> None:
    subprocess.run(
        lightbox_command("ae", "add", title, "--host", host, "--port", "104", "--data-dir", str(data)),
        check=True,
        capture_output=True,
        timeout=60,
    )


def test_only_registered_calling_aes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"LIGHTBOX_NETWORK_CALLING_AE_CHECK": "registered"}
    with running_server(data, env=env) as server:
        refused = _echo(server.dicom_port, "STRANGER")
        assert refused.returncode != 0
        assert "Calling AE Title Not Recognized" in refused.stdout + refused.stderr
        _register(data, "MODALITY", "192.0.2.7")  # registered while serving: no restart needed
        assert _echo(server.dicom_port, "MODALITY").returncode == 0
    assert "calling AE 'STRANGER' not registered" in server.log()


def test_registered_calling_aes_from_their_host(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _register(data, "HERE", "127.0.0.1")
    _register(data, "ELSEWHERE", "192.0.2.7")  # TEST-NET-1: never this machine
    with running_server(data, env={"LIGHTBOX_NETWORK_CALLING_AE_CHECK": "registered_host"}) as server:
        assert _echo(server.dicom_port, "HERE").returncode == 0
        wrong_host = _echo(server.dicom_port, "ELSEWHERE")
        assert wrong_host.returncode != 0
        assert "Calling AE Title Not Recognized" in wrong_host.stdout + wrong_host.stderr


def _accepted(port: int, offered: list[str]) -> dict[str, str]:
    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(CTImageStorage, offered)
    ae.add_requested_context(Verification, offered)
    assoc = ae.associate("127.0.0.1", port, ae_title="LIGHTBOX")
    assert assoc.is_established
    accepted = {str(c.abstract_syntax): str(c.transfer_syntax[0]) for c in assoc.accepted_contexts}
    assoc.release()
    return accepted


def test_transfer_syntax_preference(tmp_path: Path) -> None:
    offered = [ExplicitVRLittleEndian, JPEGLSLossless, ImplicitVRLittleEndian]
    with running_server(tmp_path / "default") as server:
        # by default storage takes the sender's first choice, verification explicit VR little endian
        assert _accepted(server.dicom_port, offered) == {
            CTImageStorage: ExplicitVRLittleEndian,
            Verification: ExplicitVRLittleEndian,
        }
    preference = f'["{JPEGLSLossless}", "{ImplicitVRLittleEndian}"]'
    with running_server(
        tmp_path / "ordered", env={"LIGHTBOX_NETWORK_TRANSFER_SYNTAXES": preference}
    ) as server:
        assert _accepted(server.dicom_port, offered) == {
            CTImageStorage: JPEGLSLossless,
            Verification: ImplicitVRLittleEndian,  # JPEG-LS is no syntax for a verification
        }
        # none of the preferred offered: the sender's first choice still serves
        assert (
            _accepted(server.dicom_port, [ExplicitVRLittleEndian])[CTImageStorage] == ExplicitVRLittleEndian
        )


def test_unknown_transfer_syntax_in_settings_fails_fast(tmp_path: Path) -> None:
    result = subprocess.run(
        lightbox_command("serve", "--data-dir", str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
        env={**ENV, "LIGHTBOX_NETWORK_TRANSFER_SYNTAXES": '["1.2.3.4"]'},
    )
    assert result.returncode != 0
    assert "network.transfer_syntaxes" in result.stderr and "1.2.3.4" in result.stderr
