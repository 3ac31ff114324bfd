"""Every example runs as a script and opens as a notebook; the benchmark script runs in its quick mode.

The examples are percent-format scripts (``# %%`` cells): CI runs each one
as a reader would (``python examples/NAME.py``), and jupytext must read each
as a notebook with its Markdown and code cells. The benchmark is not timed
here (no timed assertion anywhere in the tests): ``--quick`` only proves that
it still runs and prints its table.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def run(args: list[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("CONSUL_HTTP_TOKEN", None)
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_the_examples_are_there() -> None:
    names = {path.name for path in EXAMPLES}
    assert {"what_if.py", "custom_backend_notebook.py"} <= names, names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_runs_as_a_script(path: Path) -> None:
    done = run([str(path)], timeout=100)
    assert done.returncode == 0, f"{path.name} failed:\n{done.stdout}"
    assert done.stdout.strip(), f"{path.name} printed nothing"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_opens_as_a_notebook(path: Path) -> None:
    if importlib.util.find_spec("jupytext") is None:
        message = "jupytext (the docs extra) is not installed: pip install -e '.[docs]'"
        if os.environ.get("REGISTRY_CONFIG_REQUIRE_INTEGRATION") == "1":
            pytest.fail(message)
        pytest.skip(message)
    import jupytext

    notebook = jupytext.read(path)
    kinds = [cell.cell_type for cell in notebook.cells]
    assert kinds.count("code") >= 2, f"{path.name}: {kinds}"
    assert kinds[0] == "markdown", f"{path.name} should open with a Markdown cell saying what it shows"
    # A script that jupytext reads as one big cell has lost its "# %%" markers.
    assert all("# %%" not in cell.source for cell in notebook.cells if cell.cell_type == "code"), path.name
    assert '"cell_type": "markdown"' in jupytext.writes(notebook, fmt="ipynb")


def test_benchmark_quick_mode_prints_its_table() -> None:
    done = run([str(ROOT / "benchmarks" / "bench.py"), "--quick"], timeout=110)
    assert done.returncode == 0, done.stdout
    table = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert table[0] == "| measure | value | goal | verdict |"
    text = "\n".join(table)
    for measure in ("plan from Consul, 1,000 instances", "steady state", "compaction", "peak memory"):
        assert measure in text, f"the benchmark table lacks {measure!r}:\n{done.stdout}"
    assert "Machine:" in done.stdout
