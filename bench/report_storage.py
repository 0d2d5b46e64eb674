"""The storage part of the report: codecs, CT import with compression on and off, blob stores."""

from __future__ import annotations

from typing import Any

from bench.tables import table

DISK_RATIO_TARGET = 2.0
COMPRESSED_IMPORT_TARGET = 0.5  # of the rate with compression off


def storage_lines(storage: dict[str, Any]) -> list[str]:
    out: list[str] = []
    codecs = storage.get("codecs")
    if codecs:
        out.append("Lossless codecs on CT (encode, decode and compare; one thread)")
        rows = [
            [
                c["codec"],
                str(c["images"]),
                f"{c['ratio']:.2f}x",
                f"{c['images_per_s']:.1f}",
                f"{c['mb_per_s']:.1f}",
                f"{c['cpu_ms_per_image']:.1f}",
            ]
            for c in codecs
        ]
        out += table(["codec", "images", "disk ratio", "images/s", "MB/s", "CPU ms/image"], rows)
        out.append("")
    run = storage.get("compression_import")
    if run:
        out.append(
            f"CT import with compression ({run['instances']:,} CT, {run['workers']} threads, {run['codec']} "
            "in the background)"
        )
        out.append(
            f"  off {run['off_per_s']:.0f}/s; on: acknowledged {run['on_acknowledged_per_s']:.0f}/s, "
            f"all compressed {run['on_compressed_per_s']:.0f}/s ({run['compressed']:,} compressed, "
            f"{run['kept']:,} kept); disk {run['disk_off_bytes'] / 1e6:.0f} MB -> "
            f"{run['disk_on_bytes'] / 1e6:.0f} MB ({run['disk_ratio']:.2f}x)"
        )
        out.append("")
    stores = storage.get("blob_stores")
    if stores:
        out.append("Blob stores (CT objects written then read back, one at a time)")
        rows = [
            [
                s["store"],
                str(s["objects"]),
                f"{s['put_per_s']:.0f}",
                f"{s['put_mb_per_s']:.0f}",
                f"{s['get_per_s']:.0f}",
                f"{s['get_mb_per_s']:.0f}",
            ]
            for s in stores
        ]
        out += table(["store", "objects", "put/s", "put MB/s", "get/s", "get MB/s"], rows)
        out.append("")
    return out


def storage_targets(storage: dict[str, Any], full: bool) -> list[dict[str, Any]]:
    run = storage.get("compression_import")
    if not run or not run.get("disk_ratio"):
        return []
    strict = run["on_compressed_per_s"] / run["off_per_s"] if run["off_per_s"] else 0.0
    return [
        {
            "target": f"Compression: >= {DISK_RATIO_TARGET:.0f}x less disk on the CT data ({run['codec']})",
            "measured": f"{run['disk_ratio']:.2f}x",
            "met": run["disk_ratio"] >= DISK_RATIO_TARGET if full else None,
        },
        {
            "target": f"CT import with compression on >= {COMPRESSED_IMPORT_TARGET:.0%} of the rate off "
            "(until all is compressed)",
            "measured": f"{strict:.2f} ({run['on_compressed_per_s']:.0f} vs {run['off_per_s']:.0f}/s)",
            "met": strict >= COMPRESSED_IMPORT_TARGET if full else None,
        },
    ]
