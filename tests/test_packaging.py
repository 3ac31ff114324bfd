"""What a user installs: the sdist and the wheel, built for real, carry the licence and the metadata it names."""

from __future__ import annotations

import email.parser
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from _integration import need_module

ROOT = Path(__file__).resolve().parent.parent
LICENSE = (ROOT / "LICENSE").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An sdist and a wheel, built by the project's own build backend (offline, as CI builds)."""
    need_module("hatchling", package="hatchling")
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return out


def one(directory: Path, pattern: str) -> Path:
    (found,) = directory.glob(pattern)
    return found


def test_the_license_is_the_apache_2_text() -> None:
    assert LICENSE.lstrip().startswith("Apache License\n                           Version 2.0, January 2004")
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in LICENSE
    assert "END OF TERMS AND CONDITIONS" in LICENSE


def test_the_wheel_ships_the_license_and_says_so(dist: Path) -> None:
    with zipfile.ZipFile(one(dist, "*.whl")) as wheel:
        names = wheel.namelist()
        info = next(name.split("/")[0] for name in names if name.endswith(".dist-info/METADATA"))
        assert wheel.read(f"{info}/licenses/LICENSE").decode() == LICENSE
        metadata = email.parser.Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert "registry-config = registry_config.cli:console_main" in entry_points
    assert "registry_config/py.typed" in names
    assert "registry_config/display.py" in names
    assert not [name for name in names if name.startswith(("tests/", "docs/", "examples/"))]


def test_the_sdist_ships_the_license(dist: Path) -> None:
    sdist = one(dist, "*.tar.gz")
    with tarfile.open(sdist) as archive:
        top = sdist.name.removesuffix(".tar.gz")
        member = archive.extractfile(f"{top}/LICENSE")
        assert member is not None
        assert member.read().decode() == LICENSE
        pkg_info = archive.extractfile(f"{top}/PKG-INFO")
        assert pkg_info is not None
        metadata = email.parser.Parser().parsestr(pkg_info.read().decode())
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]


def test_make_plan_installs_only_the_package_and_its_extras() -> None:
    # The README's first command must not wait for the test and docs tool chains (issue 13: 86 s).
    makefile = (ROOT / "Makefile").read_text()
    plan_rule = makefile.split("\nplan: ", 1)[1].split("\n", 1)[0]
    assert plan_rule == "$(RUN_STAMP)"
    run_recipe = makefile.split("\n$(RUN_STAMP): pyproject.toml\n", 1)[1].split("\n\n", 1)[0]
    assert "-e '.[all]'" in run_recipe
    assert "test" not in run_recipe
    assert "docs" not in run_recipe
