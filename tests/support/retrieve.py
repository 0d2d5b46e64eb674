"""Retrieving from ``lightbox serve`` with pynetdicom as the C-GET SCU (and the SCP of its sub-operations)."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet  # type: ignore[attr-defined]

from tests.support.server import RunningServer


def c_get(
    server: RunningServer, identifier: Dataset, syntaxes: list[str]
) -> tuple[dict[str, bytes], Dataset, Dataset | None]:
    """The data sets received, the final C-GET-RSP's status and its identifier (failed UIDs)."""
    received: dict[str, bytes] = {}

    def on_store(event: evt.Event) -> int:
        received[str(event.request.AffectedSOPInstanceUID)] = event.request.DataSet.getvalue()
        return 0x0000

    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage, syntaxes)
    role = build_role(CTImageStorage, scp_role=True)
    assoc = ae.associate(
        "127.0.0.1",
        server.dicom_port,
        ae_title="LIGHTBOX",
        ext_neg=[role],
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    assert assoc.is_established
    responses = list(assoc.send_c_get(identifier, StudyRootQueryRetrieveInformationModelGet))
    assoc.release()
    final, failed = responses[-1]
    return received, final, failed
