"""The viewer's configuration, ``/app-config.js``: OHIF reads ``window.config`` before it starts.

Lightbox writes it instead of using the package's demo: one DICOMweb data source, this archive, whose
addresses the browser builds from the page's own origin (so the same file serves every host name and
port the archive is reached by, behind a proxy too). Checked against the installed bundles (3.13.2):
``investigationalUseDialog.option`` ``'never'`` hides the investigational-use banner; the object form of
``customizationService`` is applied to the global scope at start, so ``{'ohif.tours': {$set: []}}``
replaces the default extension's onboarding tours with none.
"""

from __future__ import annotations

import json
from typing import Any

from lightbox.web.pages import LOGIN_PATH

APP_CONFIG_PATH = "/app-config.js"
SOURCE_NAME = "lightbox"
DICOMWEB_PATH = "/dicom-web"
WADO_URI_PATH = "/wado"


def viewer_config() -> dict[str, Any]:
    """``window.config`` but the data source's addresses, which depend on the page's origin."""
    return {
        "routerBasename": "/",
        "extensions": [],
        "modes": [],
        "showStudyList": True,
        "showLoadingIndicator": True,
        "showCPUFallbackMessage": True,
        "strictZSpacingForVolumeViewport": True,
        "maxNumberOfWebWorkers": 3,
        "maxNumRequests": {"interaction": 100, "thumbnail": 5, "prefetch": 25},
        "investigationalUseDialog": {"option": "never"},
        "customizationService": {"ohif.tours": {"$set": []}},
        "defaultDataSourceName": SOURCE_NAME,
        "dataSources": [
            {
                "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
                "sourceName": SOURCE_NAME,
                "configuration": {
                    "friendlyName": "Lightbox",
                    "name": SOURCE_NAME,
                    "qidoSupportsIncludeField": True,
                    "supportsFuzzyMatching": True,
                    "supportsWildcard": True,
                    "imageRendering": "wadors",
                    "thumbnailRendering": "wadors",
                    "enableStudyLazyLoad": True,
                    "bulkDataURI": {"enabled": True, "relativeResolution": "studies"},
                    "omitQuotationForMultipartRequest": True,
                    "staticWado": False,
                },
            }
        ],
    }


def app_config_js() -> str:
    config = json.dumps(viewer_config(), indent=2).replace("\n", "\n  ")
    return (
        "// The viewer's configuration, written by Lightbox: this archive's DICOMweb, at the page's origin.\n"
        "(function () {\n"
        '  "use strict";\n'
        f"  var config = {config};\n"
        "  var origin = window.location.origin;\n"
        "  var source = config.dataSources[0].configuration;\n"
        f'  source.qidoRoot = origin + "{DICOMWEB_PATH}";\n'
        f'  source.wadoRoot = origin + "{DICOMWEB_PATH}";\n'
        f'  source.wadoUriRoot = origin + "{WADO_URI_PATH}";\n'
        "  // A session that ended (expired, logged out elsewhere): log in again and come back here\n"
        "  config.httpErrorHandler = function (error) {\n"
        "    if (error && error.status === 401) {\n"
        "      var here = window.location.pathname + window.location.search;\n"
        f'      window.location.assign("{LOGIN_PATH}?next=" + encodeURIComponent(here));\n'
        "    }\n"
        "  };\n"
        "  window.config = config;\n"
        "})();\n"
    )
