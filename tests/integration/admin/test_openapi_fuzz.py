"""schemathesis over ``/api/v2/openapi.json`` with a valid token: no input gives a 5xx or an
answer its schema does not allow. Jira's URL is kept on loopback (Test Connection calls it),
and the run is bounded to well under a minute."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from tests.integration.admin.conftest import ADMIN_TOKEN, AdminApi
from tests.support.processes import closed_port

QALITA_FIELDS = ("qalita_api_url", "qalita_api_token")
REQUEST_SCHEMAS = ("IntegrationCreate", "IntegrationWrite")


def _on_loopback(spec: dict[str, Any], port: int) -> dict[str, Any]:
    """Jira's URL points at a closed loopback port: calls fail fast, locally. QALITA's is
    left out: a QALITA that cannot be reached is a documented 502 (Create External Issue),
    which the fuzzer would otherwise configure on purpose."""
    for name in REQUEST_SCHEMAS:
        properties = spec["components"]["schemas"][name]["properties"]
        for field in QALITA_FIELDS:
            properties.pop(field, None)
        properties["base_url"]["pattern"] = rf"^http://127\.0\.0\.1:{port}(/[a-z]{{0,8}})?$"
    return spec


def test_no_input_breaks_the_api(web, tmp_path: Path):
    process, url = web
    port = closed_port()
    # Something for the generated ids to find (integration 1), so requests reach past 404s.
    AdminApi(url).create(base_url=f"http://127.0.0.1:{port}")
    spec = requests.get(f"{url}/api/v2/openapi.json", timeout=10).json()
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(_on_loopback(spec, port)))
    run = subprocess.run(
        [str(Path(sys.executable).with_name("st")), "run", str(path), "--url", url,
         "--header", f"Authorization: Bearer {ADMIN_TOKEN}",
         "--checks", "not_a_server_error,response_schema_conformance",
         "--phases", "examples,coverage,fuzzing", "--max-examples", "12", "--seed", "7",
         "--generation-database", "none", "--workers", "1", "--request-timeout", "20",
         "--no-color"],
        capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:] + process.output[-3000:]
