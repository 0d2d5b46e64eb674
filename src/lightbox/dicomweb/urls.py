"""The absolute URLs DICOMweb answers carry (RetrieveURL, BulkDataURI): built from the request.

The Host header names the server as the client reached it, which is right behind a reverse proxy too. A
client that leaves the port out of Host on a non-default port (dicomweb-client does) would get URLs that
point at port 80: then the port the request came in on is added.
"""

from __future__ import annotations

from fastapi import Request

BASE_PATH = "/dicom-web"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def dicomweb_base(request: Request) -> str:
    """The URL of /dicom-web as this request reached it, without a trailing slash."""
    url = request.base_url
    server = request.scope.get("server")
    if url.port is None and server and server[1] != _DEFAULT_PORTS.get(url.scheme):
        url = url.replace(port=server[1])
    return f"{str(url).rstrip('/')}{BASE_PATH}"
