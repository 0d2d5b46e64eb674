"""Plain-text tables for the report: left-aligned first column, the others right-aligned."""

from __future__ import annotations

from typing import Any


def table(headers: list[str], rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        padded = [f"{cells[0]:<{widths[0]}}"]
        padded += [f"{c:>{w}}" for c, w in zip(cells[1:], widths[1:], strict=True)]
        return indent + "  ".join(padded)

    return [line(headers), indent + "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def latency_lines(data: dict[str, Any]) -> list[str]:
    """One row per query kind and one for all kinds: matches, median, p95, max and the count check."""
    rows = []
    for k in [*data["kinds"], {"kind": "all kinds", **data["overall"]}]:
        if not k.get("queries"):
            rows.append([k["kind"], "0", "-", "-", "-", "-", k.get("error") or ""])
            continue
        check = "ok" if not k.get("wrong_counts") else f"{k['wrong_counts']} wrong counts"
        if k["kind"] == "all kinds":
            check = ""
        rows.append(
            [
                k["kind"],
                str(k["queries"]),
                f"{k['mean_matches']:,.1f}",
                f"{k['median_ms']:.2f}",
                f"{k['p95_ms']:.2f}",
                f"{k['max_ms']:.2f}",
                check,
            ]
        )
    headers = ["query", "n", "matches", "median ms", "p95 ms", "max ms", "count check"]
    return table(headers, rows, indent="    ")
