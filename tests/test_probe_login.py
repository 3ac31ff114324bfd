"""``probe_registry(credentials=...)`` and ``registry-config probe --credentials-file`` against real registries.

A registry that asks for a login (401) is logged in to as Docker clients do
(Basic with htpasswd; the Bearer token flow with ``auth: token``): the result
says whether the login was accepted, and never shows the password.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _registry_auth import PASSWORD, USER, Deployed, htpasswd_registry, token_registry

from registry_config import Credentials, probe_registry

__all__ = ["htpasswd_registry", "token_registry"]  # fixtures imported for pytest

pytestmark = pytest.mark.integration


@pytest.fixture(params=["htpasswd_registry", "token_registry"])
def protected(request: pytest.FixtureRequest) -> Deployed:
    deployed: Deployed = request.getfixturevalue(request.param)
    return deployed


def test_a_good_login_is_accepted(protected: Deployed) -> None:
    result = probe_registry(protected.url, credentials=Credentials(USER, PASSWORD))
    assert result.status == 401
    assert result.matches
    assert result.login == "accepted"
    assert f"The login of '{USER}' is accepted." in result.diagnosis
    assert PASSWORD not in repr(result) + json.dumps(result.to_dict())


def test_a_wrong_password_is_refused_and_not_shown(protected: Deployed) -> None:
    wrong = "not-the-Pa55word"
    result = probe_registry(protected.url, credentials=Credentials(USER, wrong))
    assert result.login == "refused"
    assert "login was refused" in result.diagnosis
    assert wrong not in repr(result) + json.dumps(result.to_dict())


def test_without_credentials_nothing_is_said_of_a_login(protected: Deployed) -> None:
    result = probe_registry(protected.url)
    assert result.status == 401
    assert result.login is None


def test_cli_probe_reads_the_login_from_a_file(htpasswd_registry: Deployed, tmp_path: Path) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_text(f"{USER}:{PASSWORD}\n")
    bad.write_text(f"{USER}:wrong-password\n")
    command = [sys.executable, "-m", "registry_config", "probe", htpasswd_registry.url, "--json"]
    accepted = subprocess.run([*command, "--credentials-file", str(good)], capture_output=True, text=True, timeout=120)
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(accepted.stdout)["login"] == "accepted"
    refused = subprocess.run([*command, "--credentials-file", str(bad)], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 7, refused.stderr
    assert json.loads(refused.stdout)["login"] == "refused"
    for output in (accepted, refused):
        assert PASSWORD not in output.stdout + output.stderr
        assert "wrong-password" not in output.stdout + output.stderr
