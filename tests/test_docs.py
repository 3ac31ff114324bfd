"""The documentation is tested: its examples run, and the site builds with warnings as errors.

Every ```` ```pycon ```` block of a page runs as a doctest, the page's blocks
in order sharing one namespace (a page reads as one session). Every
```` ```console ```` block runs too: each ``$ command`` line in bash (the
virtual environment's ``bin`` first on ``PATH``, so ``registry-config`` is
this checkout's), its stdout and stderr compared with the lines that follow.
Blocks in other languages (``sh``, ``python``, ``text``) are shown, not run:
use them for what needs a service the tests do not start.
"""

from __future__ import annotations

import doctest
import html
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _integration import child_pytest_env, unavailable

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def pages() -> list[Path]:
    return sorted(
        path
        for path in DOCS.rglob("*.md")
        if "_build" not in path.parts and "rendered" not in path.relative_to(DOCS).parts
    )


def blocks(path: Path, language: str) -> list[tuple[int, str]]:
    """The fenced blocks of ``language`` in a page, each with the line number its body starts on."""
    text = path.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        info = match.group("info").strip()
        # MyST directives ({code-block} pycon) count too.
        words = info.replace("{code-block}", "").replace("{code}", "").split()
        if words and words[0] == language:
            found.append((text.count("\n", 0, match.start("body")) + 1, match.group("body")))
    return found


def page_id(path: Path) -> str:
    return str(path.relative_to(DOCS))


DOCTEST_PAGES = [path for path in pages() if blocks(path, "pycon")]
CONSOLE_PAGES = [path for path in pages() if blocks(path, "console")]


def test_the_pages_have_examples_to_run() -> None:
    """A renamed fence or a broken extractor must not turn every example test into nothing."""
    names = {page_id(path) for path in DOCTEST_PAGES}
    assert {"tutorial.md", "security.md"} <= names, names
    assert "tutorial.md" in {page_id(path) for path in CONSOLE_PAGES}


@pytest.mark.parametrize("path", DOCTEST_PAGES, ids=page_id)
def test_pycon_blocks_run(path: Path) -> None:
    parser = doctest.DocTestParser()
    examples: list[doctest.Example] = []
    for first_line, body in blocks(path, "pycon"):
        for example in parser.get_examples(body):
            example.lineno += first_line - 1
            examples.append(example)
    assert examples, f"{page_id(path)} has pycon blocks but no >>> example in them"
    test = doctest.DocTest(examples, {"__name__": "__doc__"}, page_id(path), str(path), 0, None)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    # A page may import the code it shows from its own directory (howto/inventory_backend.py).
    sys.path.insert(0, str(path.parent))
    try:
        runner.run(test, out=report.append)
    finally:
        sys.path.remove(str(path.parent))
    assert runner.failures == 0, "".join(report)


def run_console(command: str) -> str:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "100"
    env.pop("CONSUL_HTTP_TOKEN", None)
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout


def console_examples(body: str) -> list[tuple[str, str]]:
    examples: list[tuple[str, list[str]]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            examples.append((line[2:], []))
        elif examples:
            examples[-1][1].append(line)
        elif line.strip():
            raise AssertionError(f"console block starts with output, not a '$ ' command: {line!r}")
    return [(command, "\n".join(output)) for command, output in examples]


def normalized(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


@pytest.mark.parametrize("path", CONSOLE_PAGES, ids=page_id)
def test_console_blocks_run(path: Path) -> None:
    checked = 0
    for first_line, body in blocks(path, "console"):
        for command, expected in console_examples(body):
            got = run_console(command)
            assert normalized(got) == normalized(expected), (
                f"{page_id(path)}, block at line {first_line}: `{command}` printed\n{got}\ninstead of\n{expected}"
            )
            checked += 1
    assert checked


def test_the_custom_backend_howto_passes_the_conformance_suite() -> None:
    """The backend and the test module that howto/custom-backend.md includes, run as a reader would run them."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_inventory_backend.py"],
        cwd=DOCS / "howto",
        env=child_pytest_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout
    assert " passed" in done.stdout
    assert "failed" not in done.stdout


def test_performance_page_holds_a_benchmark_table() -> None:
    """docs/performance.md shows the table benchmarks/bench.py prints, with the machine it ran on."""
    text = (DOCS / "performance.md").read_text(encoding="utf-8")
    table = text.partition("<!-- bench:start -->")[2].partition("<!-- bench:end -->")[0]
    assert "Machine:" in table
    assert "| measure | value | goal | verdict |" in table
    for measure in ("10,000 instances", "growth", "steady state", "compaction", "peak memory"):
        assert measure in table, measure


def test_console_examples_parse_commands_and_output() -> None:
    body = "$ echo a\na\n\n$ echo b; echo c\nb\nc\n"
    assert console_examples(body) == [("echo a", "a\n"), ("echo b; echo c", "b\nc")]
    with pytest.raises(AssertionError, match="starts with output"):
        console_examples("oops\n$ true\n")


def test_a_failing_example_fails() -> None:
    """The doctest runner used above does report a wrong expectation."""
    parser = doctest.DocTestParser()
    test = doctest.DocTest(parser.get_examples(">>> 1 + 1\n3\n"), {}, "t", "t", 0, None)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    runner.run(test, out=lambda _text: None)
    assert runner.failures == 1


def need_docs_tools() -> None:
    """The docs extra (sphinx, myst-parser, furo): skip without it, fail without it in CI."""
    missing = [name for name in ("sphinx", "myst_parser", "furo") if importlib.util.find_spec(name) is None]
    if missing:
        unavailable(f"the docs extra is not installed (missing {', '.join(missing)}): pip install -e '.[docs]'")


@pytest.mark.timeout(300)  # about 15 s of CPU, but a busy 2-core machine stretches it
def test_sphinx_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    need_docs_tools()
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(tmp_path / "html")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout
    for page in ("index", "tutorial", "security", "api", "cli", "performance", "howto/custom-backend"):
        assert (tmp_path / "html" / f"{page}.html").is_file(), page
    api = (tmp_path / "html" / "api.html").read_text(encoding="utf-8")
    assert 'id="registry_config.plan.build_plan"' in api, "autodoc did not document build_plan"
    # Docstrings say :class:`DiscoveryError`; the short_refs extension links that to the one object so named.
    assert 'href="#registry_config.errors.DiscoveryError"' in api
    cli = (tmp_path / "html" / "cli.html").read_text(encoding="utf-8")
    assert "--insecure-registry" in cli, "the CLI reference lacks the plan sub-command's options"
    # The API reference shows the API, not the plumbing (docs/_ext/api_cleanup.py).
    text = html.unescape(re.sub(r"<[^>]+>", "", api))
    assert "NOTHING" not in text, "attrs' sentinel shows as a default"
    assert "_EndpointSlot" not in text, "a private base class is shown"
    assert not re.search(r"Bases:\s*\n", text), "an empty 'Bases:' line"
    assert "ServiceInstance(address: IPAddress, port: int, *, node: str | None = None" in text
    assert "meta: Mapping[str, str] = {}" in text
    # A field is documented with its description, as an attribute.
    for anchor in (
        "discovery.model.ServiceInstance.port",
        "plan.StagingPlan.rejected",
        "discovery.model.Discovery.stale",
    ):
        entry = api.partition(f'id="registry_config.{anchor}"')[2].partition("</dd>")[0]
        assert len(re.sub(r"<[^>]+>", "", entry.partition("<dd>")[2]).strip()) > 20, anchor
    # A how-to's helper module is downloadable from its page.
    assert list((tmp_path / "html" / "_downloads").rglob("tiny_registry.py"))


def test_howto_helper_docstrings_name_what_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    """A helper's docstring that names ``thing()`` names something a reader can call (tiny_registry's start())."""
    monkeypatch.syspath_prepend(str(DOCS / "howto"))  # the helpers import each other, as the pages do
    for path in sorted((DOCS / "howto").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"howto_{path.stem}", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        owners = [module, *(value for value in vars(module).values() if isinstance(value, type))]
        for name in re.findall(r"``(\w+)\(", module.__doc__ or ""):
            assert any(hasattr(owner, name) for owner in owners), f"{path.name} names {name}(), which does not exist"
