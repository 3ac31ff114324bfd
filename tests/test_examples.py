"""Every example runs as a script and opens as a notebook; those that show plans run as notebooks; the benchmark
script runs in its quick mode.

The examples are percent-format scripts (``# %%`` cells): CI runs each one
as a reader would (``python examples/NAME.py``), and jupytext must read each
as a notebook with its Markdown and code cells. The examples that display a
plan are also executed as notebooks, in a real IPython kernel (nbclient, as
Jupyter runs them), and their rich displays checked: a table, not a repr,
and nothing written in red on stderr. The benchmark is not timed here (no
timed assertion anywhere in the tests): ``--quick`` only proves that it still
runs and prints its table.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _integration import need_module

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
    jupytext = need_module("jupytext", package="jupytext")
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


# The examples that show plans (and snapshots) as a notebook does: each cell's rich output is checked.
NOTEBOOKS = {"what_if.py": 2, "custom_backend_notebook.py": 2}


@pytest.mark.parametrize(("name", "tables"), sorted(NOTEBOOKS.items()))
def test_example_runs_as_a_notebook_with_its_displays(name: str, tables: int) -> None:
    jupytext = need_module("jupytext", package="jupytext")
    nbclient = need_module("nbclient", package="nbclient")
    need_module("ipykernel", package="ipykernel")
    notebook = jupytext.read(ROOT / "examples" / name)
    # The kernel is this interpreter (ipykernel's own "python3" kernel runs sys.executable), started in the
    # examples directory as Jupyter would; a cell that raises fails the run with the cell's traceback.
    client = nbclient.NotebookClient(
        notebook, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(ROOT / "examples")}}
    )
    client.execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]
    rich = [output["data"] for output in outputs if output["output_type"] in ("execute_result", "display_data")]
    shown = [data["text/html"] for data in rich if "text/html" in data]
    assert len(shown) == tables, f"{name}: {len(shown)} tables shown"
    for table in shown:
        assert table.startswith('<table class="registry-config"'), table[:200]
        assert "<script" not in table
    # The plain-text form of each display is the readable text (IPython's pretty printer), not a repr.
    assert all(not data["text/plain"].startswith(("StagingPlan(", "Discovery(")) for data in rich), rich
    # Nothing reached stderr: no logging last-resort handler, no warning a user did not ask for.
    errors = [output.get("text", "") for output in outputs if output.get("name") == "stderr"]
    assert errors == [], errors
