"""dcmtk's dcmqrscp as a reference query/retrieve SCP: the retrieve benchmark's files, indexed in place."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.support.dcmtk import ENV, listening, tool
from tests.support.server import free_port

AE_TITLE = "DCMQRSCP"


def _config(port: int, database: Path, destinations: dict[str, int]) -> str:
    hosts = "\n".join(f"{ae.lower()} = ({ae}, 127.0.0.1, {p})" for ae, p in destinations.items())
    return f"""NetworkTCPPort  = {port}
MaxPDUSize      = 131072
MaxAssociations = 16

HostTable BEGIN
{hosts}
HostTable END

VendorTable BEGIN
VendorTable END

AETable BEGIN
{AE_TITLE}   {database}   R   (10, 1024mb)   ANY
AETable END
"""


@contextlib.contextmanager
def dcmqrscp(folder: Path, files: list[Path], destinations: dict[str, int]) -> Iterator[int]:
    """dcmqrscp on a free port serving ``files`` (dcmqridx indexes them where they are) and able to C-MOVE
    to the AE titles in ``destinations`` (title: port on the loopback); yields the port."""
    database = folder / "db"
    database.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [tool("dcmqridx"), str(database), *map(str, files)], env=ENV, check=True, capture_output=True
    )
    port = free_port()
    config = folder / "dcmqrscp.cfg"
    config.write_text(_config(port, database.resolve(), destinations))
    with listening([tool("dcmqrscp"), "-c", str(config)], port):
        yield port
