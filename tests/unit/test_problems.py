"""Every HTTP error is problem+json, an unexpected one too (its details stay in the log)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lightbox.api.app import create_http_app
from lightbox.app import build_archive
from lightbox.config import load_settings
from lightbox.domain.accounts import Role


def test_unexpected_error_is_a_problem_without_details(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = build_archive(load_settings(data_dir=tmp_path))
    try:

        def broken() -> dict[str, str]:
            raise RuntimeError("secret internals")

        monkeypatch.setattr(archive.manage, "health", broken)
        archive.accounts.add_user("admin", Role.ADMIN, None)
        token, _ = archive.accounts.create_token("admin", "t")
        client = TestClient(
            create_http_app(archive),
            raise_server_exceptions=False,
            headers={"Authorization": f"Bearer {token}"},
        )
        answer = client.get("/api/health")
        assert answer.status_code == 500
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["status"] == 500 and "secret" not in answer.text
        unknown = client.get("/api/no-such-route")
        assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
    finally:
        archive.close()
