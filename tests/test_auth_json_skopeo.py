"""The rendered auth.json in a real client: skopeo pulls from the htpasswd and token registries with it, not without.

skopeo reads ``--authfile`` exactly as podman and buildah read
``REGISTRY_AUTH_FILE``; its own defaults (``$XDG_RUNTIME_DIR/containers``,
``~/.docker``) point into the test's temporary directory, so the control run
without the file has no login to fall back on.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from _integration import need_program
from _registry_auth import PASSWORD, USER, Deployed, htpasswd_registry, token_registry

from registry_config import Credentials, render_auth_json, resolve_image
from registry_config.auth import write_auth_json

__all__ = ["htpasswd_registry", "token_registry"]  # fixtures imported for pytest

pytestmark = [pytest.mark.integration, pytest.mark.clients]

LOGIN = Credentials(USER, PASSWORD)


def _inspect(tmp_path: Path, reference: str, *authfile: str) -> subprocess.CompletedProcess[str]:
    skopeo = need_program("skopeo", package="skopeo")
    home, run = tmp_path / "home", tmp_path / "run"
    home.mkdir(exist_ok=True)
    run.mkdir(exist_ok=True)
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(home), "XDG_RUNTIME_DIR": str(run), "TMPDIR": str(tmp_path)}
    return subprocess.run(
        # --tls-verify=false only lets skopeo talk plain HTTP to this loopback registry: the login is what is tested.
        [skopeo, "inspect", *authfile, "--tls-verify=false", f"docker://{reference}"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("fixture", ["htpasswd_registry", "token_registry"])
def test_skopeo_pulls_with_the_rendered_auth_json_and_is_refused_without(
    request: pytest.FixtureRequest, tmp_path: Path, fixture: str
) -> None:
    deployed: Deployed = request.getfixturevalue(fixture)
    address = deployed.url.removeprefix("http://")
    reference = f"{address}/team/app:1.0"

    refused = _inspect(tmp_path, reference)
    assert refused.returncode != 0
    assert "unauthorized" in refused.stderr.lower()

    auth = tmp_path / "auth.json"
    auth.write_text('{"auths": {"other.example": {"auth": "b3RoZXI6cHc="}}}')
    write_auth_json(auth, deployed.url, LOGIN)
    assert auth.read_text() == render_auth_json(
        deployed.url, LOGIN, existing='{"auths": {"other.example": {"auth": "b3RoZXI6cHc="}}}'
    )
    pulled = _inspect(tmp_path, reference, "--authfile", str(auth))
    assert pulled.returncode == 0, pulled.stderr
    # skopeo and resolve_image agree on what the tag points to.
    digest = json.loads(pulled.stdout)["Digest"]
    assert digest == resolve_image(deployed.url, "team/app:1.0", credentials=LOGIN).digest
    assert digest == deployed.images["team/app:1.0"].digest
