"""The documentation site: it builds strictly, every public name has a reference entry, and
every Python block of its pages runs (docs/development.md, "The documentation").

The blocks of one page run in order as one script, in a fresh directory, with no API key:
``"openai:..."`` and ``"anthropic:..."`` models talk to the local servers of tests/servers
through the real SDKs. A block marked ``<!-- docs-test: skip, REASON -->`` on the line before
it is left out; the test keeps such blocks few.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.anthropic_server import AnthropicServer, anthropic_server
from tests.servers.openai_server import OpenAIServer, openai_server
from tests.services import require_package, require_service
from tools import docs_site

__all__ = ["anthropic_server", "openai_server"]

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FENCE = re.compile(r"^(?P<indent>[ ]*)```python$")
SKIP = re.compile(r"<!-- docs-test: skip, (?P<reason>\S.*?) -->")
MAX_SKIPPED = 3


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def blocks(text: str) -> tuple[list[str], list[str]]:
    """The fenced Python blocks of a page, at any indentation (in a list item too), dedented:
    those to run, and the reasons of those marked to skip on the line before them."""
    lines = text.split("\n")
    run, skipped = [], []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent = opening.group("indent")
        end = next((j for j in range(i + 1, len(lines)) if lines[j].rstrip() == f"{indent}```"), None)
        if end is None:
            raise AssertionError(f"the ```python block of line {i + 1} is not closed")
        code = textwrap.dedent("\n".join(line.removeprefix(indent) for line in lines[i + 1 : end])) + "\n"
        marker = SKIP.search(lines[i - 1]) if i else None
        if marker:
            skipped.append(marker.group("reason"))
        else:
            run.append(code)
        i = end + 1
    return run, skipped


def page_blocks(page: Path) -> tuple[list[str], list[str]]:
    return blocks(page.read_text(encoding="utf-8"))


RUNNABLE = [page for page in pages() if page_blocks(page)[0]]


# --- the build --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The site, built once for this module, strictly, as `python3 dev.py docs` builds it."""
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "WARNING" not in result.stderr, result.stderr[-4000:]
    yield out


def html(site: Path, page: str) -> str:
    return (site / page / "index.html").read_text(encoding="utf-8")


@pytest.mark.slow  # the site is built once for these (8 s of CPU)
def test_every_page_is_built_and_in_the_navigation(site: Path) -> None:
    for page in pages():
        relative = page.relative_to(DOCS).with_suffix("")
        built = site / ("" if relative.name == "index" else relative) / "index.html"
        assert built.exists(), f"{page.relative_to(ROOT)} was not built"
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in pages():
        assert page.relative_to(DOCS).as_posix() in nav, f"{page.relative_to(ROOT)} is not in the nav"


@pytest.mark.slow  # the site is built once for these (8 s of CPU)
def test_every_name_of_plait_all_has_a_reference_entry(site: Path) -> None:
    import plait

    api = html(site, "reference/api")
    assert len(plait.__all__) >= 50
    missing = [name for name in plait.__all__ if f'id="plait.{name}"' not in api]
    assert not missing, f"no API reference entry for plait.{missing}"
    # the docstrings' >>> examples are code, not quotes
    assert '<span class="gp">&gt;&gt;&gt; </span>' in api and "<blockquote>" not in api
    # the docstrings' Sphinx roles became links to the entries they name
    assert ":class:<code>" not in api
    assert 'href="#plait.errors.BudgetExceededError"><code>BudgetExceededError</code></a>' in api


@pytest.mark.slow  # the site is built once for these (8 s of CPU)
def test_every_name_of_the_public_modules_has_a_reference_entry(site: Path) -> None:
    api = html(site, "reference/api")
    for module_name in docs_site.PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        names = getattr(module, "__all__", None)
        assert names, f"{module_name} has no __all__ to document"
        missing = [name for name in names if f'id="{module_name}.{name}"' not in api]
        assert not missing, f"no API reference entry for {module_name}.{missing}"


@pytest.mark.slow  # the site is built once for these (8 s of CPU)
def test_every_distribution_name_has_a_reference_entry(site: Path) -> None:
    page = html(site, "reference/distributions")
    for distribution, (package, _source) in docs_site.DISTRIBUTIONS.items():
        require_package(package, distribution)
        names = importlib.import_module(package).__all__  # the runtime's list, not griffe's
        missing = [name for name in names if f'id="{package}.{name}"' not in page]
        assert not missing, f"{distribution}: no reference entry for {package}.{missing}"
    # the entry is the docstring, not an empty heading
    assert "OpenAI models" in page or "Chat Completions" in page


@pytest.mark.slow  # the site is built once for these (8 s of CPU)
def test_every_hookspec_has_a_reference_entry(site: Path) -> None:
    from plait import hookspecs

    page = html(site, "reference/hooks")
    specs = [name for name, fn in vars(hookspecs).items() if hasattr(fn, f"{hookspecs.PROJECT_NAME}_spec")]
    assert len(specs) >= 11
    missing = [name for name in specs if f'id="plait.hookspecs.{name}"' not in page]
    assert not missing, f"no hook reference entry for {missing}"


@pytest.mark.slow  # the site is built once for these (8 s of CPU)
def test_the_cli_reference_is_the_clis_own_help(site: Path) -> None:
    page = html(site, "reference/cli")
    sections: list[str] = []
    docs_site.cli_reference()  # what the hook generates, for comparison
    from plait.cli import build_parser

    docs_site._walk(build_parser(), "plait", sections, level=2)
    commands = [section.split("`")[1] for section in sections]
    assert {"plait", "plait run", "plait runs list", "plait runs approve", "plait graph"} <= set(commands)
    for command in commands:
        assert f'id="{command.replace(" ", "-")}"' in page, f"{command} has no section"
    assert "--budget-max-cost" in page and "--on-changed" in page  # options, as --help prints them


@pytest.mark.slow  # the site is built once for these (8 s of CPU)
def test_the_changelog_page_is_the_changelog(site: Path) -> None:
    first_entry = next(
        line[2:].strip()
        for line in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("- ")
    )
    words = " ".join(re.sub(r"[`*]", "", first_entry).split()[:6])
    assert words.split()[0] in html(site, "changelog")


def test_every_distributions_readme_links_to_its_pages() -> None:
    readmes = [
        ROOT / "core" / "README.md",
        *ROOT.glob("providers/*/README.md"),
        *ROOT.glob("plugins/*/README.md"),
    ]
    readmes.append(ROOT / "examples" / "plugins" / "plait-http" / "README.md")
    assert len(readmes) == len(docs_site.DISTRIBUTIONS) + 1
    for readme in readmes:
        linked = re.findall(
            r"https://github\.com/plait-dev/plait/blob/main/docs/([\w/.-]+\.md)", readme.read_text()
        )
        assert linked, f"{readme.relative_to(ROOT)} links to no page of the documentation"
        for page in linked:
            assert (DOCS / page).exists(), (
                f"{readme.relative_to(ROOT)} links to docs/{page}, which does not exist"
            )


def test_the_readmes_links_into_the_site_resolve() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(((?:docs/|examples/|CHANGELOG)[^)#]*)", text)
    assert len([t for t in targets if t.startswith("docs/") and t.endswith(".md")]) >= 20
    missing = [target for target in targets if not (ROOT / target).exists()]
    assert not missing, f"README.md links to {missing}, which do not exist"


# --- the code on the pages --------------------------------------------------------------


def test_the_docstrings_rest_blocks_become_fences() -> None:
    text = (
        "A module::\n\n    [tool]\n    x = 1\n\n  indented::\n\n      y\n\n>>> f(1)\n2\n\nThe end, a::b pair."
    )
    assert docs_site.rest_blocks_to_markdown(text).split("\n") == [
        "A module:",
        "",
        "```text",
        "[tool]",
        "x = 1",
        "```",
        "",
        "",
        "  indented:",
        "",
        "  ```text",
        "  y",
        "  ```",
        "",
        "",
        "",
        "```pycon",
        ">>> f(1)",
        "2",
        "```",
        "",
        "",
        "The end, a::b pair.",
    ]


def test_every_python_block_is_run_or_skipped_with_a_reason() -> None:
    fences = sum(
        len(re.findall(r"^[ ]*```python$", page.read_text(encoding="utf-8"), re.M)) for page in pages()
    )
    run = sum(len(page_blocks(page)[0]) for page in pages())
    skipped = [reason for page in pages() for reason in page_blocks(page)[1]]
    assert run + len(skipped) == fences, "a ```python block is neither run nor skipped (unclosed fence?)"
    assert run >= 30
    assert len(skipped) <= MAX_SKIPPED, f"too many skipped blocks: {skipped}"


def test_blocks_are_found_at_any_indentation_and_the_skip_marker_is_read() -> None:
    sample = (
        "Text.\n\n<!-- docs-test: skip, needs a real key -->\n```python\nraise SystemExit(1)\n```\n"
        "```python\ny = 2\n```\n- item:\n\n  ```python\n  def f():\n      return 1\n  ```\n"
    )
    assert blocks(sample) == (["y = 2\n", "def f():\n    return 1\n"], ["needs a real key"])
    with pytest.raises(AssertionError, match="line 2 is not closed"):
        blocks("x\n```python\nprint(1)\n")


def _params() -> list[object]:
    # a fresh interpreter per page; with a provider SDK, a server or Ray, often over 5 s
    return [
        pytest.param(page, marks=pytest.mark.slow, id=page.relative_to(DOCS).as_posix()) for page in RUNNABLE
    ]


@pytest.mark.parametrize("page", _params())
def test_the_pages_code_runs(
    page: Path, tmp_path: Path, openai_server: OpenAIServer, anthropic_server: AnthropicServer
) -> None:
    code = "\n\n".join(page_blocks(page)[0])
    if "redis://" in code:
        require_service("redis")
    for module, distribution in (("plait_ray", "plait-ray"), ("plait_serve", "plait-serve")):
        if module in code:
            require_package(module, distribution)
    # annotations are not evaluated: a block may annotate with a name another page defines
    script = tmp_path / "page.py"
    script.write_text("from __future__ import annotations\n\n" + code, encoding="utf-8")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith(("_API_KEY", "_BASE_URL")) and not k.startswith(("PLAIT_", "OTEL_"))
    }
    env.update(
        PLAIT_OFFLINE_DELAY="0",
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=openai_server.base_url,
        ANTHROPIC_API_KEY="test-key",
        ANTHROPIC_BASE_URL=anthropic_server.base_url,
        PLAIT_STORAGE=f"sqlite:///{tmp_path / 'plait.db'}",
        PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")])),
        COLUMNS="120",
    )
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, (
        f"{page.relative_to(ROOT)}:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    )


def test_the_graph_on_the_steps_page_is_what_plait_graph_draws(tmp_path: Path) -> None:
    from tests.test_readme import run_offline

    shown = re.search(r"```mermaid\n(.*?)```", (DOCS / "concepts" / "steps.md").read_text(), re.S)
    assert shown is not None
    plait = Path(sys.executable).with_name("plait")
    result = run_offline([str(plait), "graph", "human_approval.py:workflow"], ROOT / "examples")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == shown.group(1).strip()


def _shell_commands() -> list[tuple[str, str]]:
    """Every ``plait ...`` line of the pages' (and the README's) shell blocks, without its comment."""
    found = []
    for page in [*pages(), ROOT / "README.md"]:
        for block in re.findall(r"^```bash\n(.*?)^```", page.read_text(encoding="utf-8"), re.M | re.S):
            for line in block.splitlines():
                command = line.split("  #")[0].split(" # ")[0].strip()
                if command.startswith("plait "):
                    found.append((page.name, command))
    return found


def test_every_plait_command_on_the_pages_exists_with_its_options() -> None:
    """A page cannot show a subcommand or an option the CLI does not have."""
    import argparse

    from plait.cli import build_parser

    commands = _shell_commands()
    assert len(commands) >= 20
    for page, command in commands:
        parser = build_parser()
        words = command.split()[1:]
        known = {option for action in parser._actions for option in action.option_strings}
        for word in words:
            sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
            if sub is None or word not in sub.choices:
                if not word.startswith("-"):
                    break
                continue
            parser = sub.choices[word]
            known |= {option for action in parser._actions for option in action.option_strings}
        options = re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", command)
        unknown = [option for option in options if option not in known]
        assert not unknown, f"{page}: `{command}` uses {unknown}, which `{parser.prog}` does not have"
        assert parser.prog != "plait" or words[0].startswith("-"), f"{page}: `{command}`: no such command"


def test_the_first_time_travel_block_runs_alone_as_pasted(tmp_path: Path) -> None:
    """The time-travel page's first block is a whole program (it was the README's)."""
    from tests.test_readme import run_offline

    first = page_blocks(DOCS / "concepts" / "time-travel.md")[0][0]
    assert 'storage="sqlite:///notes.db"' in first and 'if __name__ == "__main__":' in first
    (tmp_path / "notes.py").write_text(first, encoding="utf-8")
    result = run_offline([sys.executable, "notes.py"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "{'replay_of': '" in result.stdout and result.stdout.strip().endswith("[]")
    assert (tmp_path / "notes.db").exists()
