"""MkDocs hooks of the documentation site (``mkdocs.yml``: ``hooks:``).

The reference pages are generated, so they cannot drift from the code. A page asks for
a part with a placeholder line, replaced before MkDocs renders the page:

``<!-- generated: cli -->``
    every ``plait`` command and subcommand with its ``--help``, from
    :func:`plait.cli.build_parser` (plugin commands included: those installed here);
``<!-- generated: api plait -->``
    a mkdocstrings entry (``::: plait.Name``) for every name in ``plait.__all__``;
``<!-- generated: api modules -->``
    the public modules plugins build on (``plait.models``, ``plait.storage``, ...);
``<!-- generated: api distributions -->``
    every name in each distribution's ``__all__`` (``plait_openai.OpenAIModel``, ...).

:class:`DocstringBlocks` (a griffe extension, ``mkdocs.yml``: ``extensions:``) turns the
docstrings' reStructuredText blocks into Markdown: ``>>>`` examples and ``::`` literal blocks
become fenced code, so they are shown as code, not as quotes or run-on text.

The names are read with griffe, statically (as mkdocstrings reads them): nothing is
imported to list them. A distribution that exports its names lazily (a module
``__getattr__``) is documented from the private module that defines each name, under
its public name, with an anchor ``id="plait_openai.OpenAIModel"`` that
tests/test_docs_site.py looks for.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any

import griffe

ROOT = Path(__file__).resolve().parent.parent

#: the public modules of the core that plugins and applications import (docs/plugins.md,
#: "Public contracts"); plait.hookspecs has a page of its own (reference/hooks.md)
PUBLIC_MODULES = (
    "plait.errors",
    "plait.events",
    "plait.models",
    "plait.chat_format",
    "plait.storage",
    "plait.runners",
    "plait.sinks",
    "plait.retry",
    "plait.tracing",
    "plait.testing",
    "plait.prices",
    "plait.plugins",
)

#: every distribution but the core: its package, and the source folder griffe reads
DISTRIBUTIONS = {
    "plait-openai": ("plait_openai", "providers/openai/src"),
    "plait-anthropic": ("plait_anthropic", "providers/anthropic/src"),
    "plait-litellm": ("plait_litellm", "providers/litellm/src"),
    "plait-postgres": ("plait_postgres", "plugins/postgres/src"),
    "plait-redis": ("plait_redis", "plugins/redis/src"),
    "plait-otlp": ("plait_otlp", "plugins/otlp/src"),
    "plait-nats": ("plait_nats", "plugins/nats/src"),
    "plait-ray": ("plait_ray", "plugins/ray/src"),
    "plait-serve": ("plait_serve", "plugins/serve/src"),
    "plait-mcp": ("plait_mcp", "plugins/mcp/src"),
    "plait-http": ("plait_http", "examples/plugins/plait-http/src"),
}

PLACEHOLDER = re.compile(r"^<!-- generated: (.+?) -->$", re.MULTILINE)
#: a Sphinx role of a docstring as the Markdown renderer leaves it: :class:<code>~plait.X</code>
ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|exc|obj):<code>(~?)([\w.]+)(\(\))?</code>")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace each placeholder of a page with what it names."""
    return PLACEHOLDER.sub(lambda match: generate(match.group(1)), markdown)


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """The docstrings' Sphinx roles (``:class:`~plait.Budget```) as links to their entries
    (resolved by mkdocs-autorefs; a name without an entry stays code, without a warning)."""
    return ROLE.sub(_role_link, html)


def _role_link(match: re.Match[str]) -> str:
    short, target, call = match.groups()
    label = (target.rsplit(".", 1)[-1] if short else target) + (call or "")
    return f'<autoref identifier="{target}" optional><code>{label}</code></autoref>'


def generate(what: str) -> str:
    if what == "cli":
        return cli_reference()
    if what == "api plait":
        return "\n\n".join(f"::: plait.{name}" for name in core_names())
    if what == "api modules":
        return "\n\n".join(
            f"## `{module}`\n\n::: {module}\n    options:\n      show_root_heading: false"
            for module in PUBLIC_MODULES
        )
    if what == "api distributions":
        return distributions_reference()
    raise ValueError(f"docs: unknown placeholder <!-- generated: {what} -->")


# --- names -------------------------------------------------------------------------------


def _load(package: str, source: str) -> Any:
    import griffe

    return griffe.load(package, search_paths=[str(ROOT / source)], resolve_aliases=False)


def declared_all(module: Any) -> list[str]:
    """The names of a griffe module's ``__all__`` (a literal list or tuple of strings)."""
    import ast

    attribute = module.members.get("__all__")
    if attribute is None or attribute.value is None:
        raise ValueError(f"docs: {module.path} declares no __all__")
    return list(ast.literal_eval(str(attribute.value)))


def core_names() -> list[str]:
    return declared_all(_load("plait", "core/src"))


def public_names() -> dict[str, list[str]]:
    """Every documented public name by package: ``plait``'s ``__all__`` and each distribution's."""
    names = {"plait": core_names()}
    for package, source in DISTRIBUTIONS.values():
        names[package] = declared_all(_load(package, source))
    return names


def _definition(package: Any, name: str) -> str:
    """The dotted path of the object a package exports as ``name``: the package's own member
    when it has one, else the one module of the package that defines it (a lazy export)."""
    member = package.members.get(name)
    if member is not None:
        return f"{package.path}.{name}"
    found = [
        f"{module.path}.{name}"
        for module in package.modules.values()
        if name in module.members and not module.members[name].is_alias
    ]
    if len(found) != 1:
        raise ValueError(f"docs: {package.path}.{name}: defined in {found or 'no module'}, expected one")
    return found[0]


def distributions_reference() -> str:
    parts = []
    for distribution, (package_name, source) in DISTRIBUTIONS.items():
        package = _load(package_name, source)
        parts.append(f"## {distribution}\n\n`import {package_name}`")
        summary = package.docstring.value.split("\n\n")[0] if package.docstring else ""
        if summary:
            parts.append(summary)
        for name in declared_all(package):
            public = f"{package_name}.{name}"
            path = _definition(package, name)
            entry = f"::: {path}"
            if path != public:
                entry += f'\n    options:\n      heading: "{public}"\n      toc_label: "{name}"'
            parts.append(f'<a id="{public}"></a>\n\n{entry}')
    return "\n\n".join(parts)


# --- the CLI -----------------------------------------------------------------------------


def cli_reference(width: int = 88) -> str:
    """Every command's help, as ``plait COMMAND --help`` prints it, one section each."""
    from plait.cli import build_parser

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)  # argparse wraps at the terminal's width
    try:
        sections: list[str] = []
        _walk(build_parser(), "plait", sections, level=2)
        return "\n\n".join(sections)
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def _walk(parser: argparse.ArgumentParser, command: str, sections: list[str], level: int) -> None:
    sections.append(f"{'#' * level} `{command}`\n\n```text\n{parser.format_help().rstrip()}\n```")
    for action in parser._actions:  # argparse has no public way to list subcommands
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                _walk(sub, f"{command} {name}", sections, min(level + 1, 4))


# --- docstrings --------------------------------------------------------------------------


class DocstringBlocks(griffe.Extension):
    """reStructuredText's code blocks in the docstrings as Markdown fences (see the module)."""

    def on_object(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rest_blocks_to_markdown(obj.docstring.value)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def rest_blocks_to_markdown(text: str) -> str:
    """``>>>`` lines (up to the next blank line) and the indented block after a line ending
    in ``::`` as fenced code; everything else as it is."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith(">>>"):
            pad = " " * _indent(line)
            end = i
            while end < len(lines) and lines[end].strip():
                end += 1
            out += ["", f"{pad}```pycon", *lines[i:end], f"{pad}```", ""]
            i = end
            continue
        following = next((j for j in range(i + 1, len(lines)) if lines[j].strip()), None)
        if (
            line.rstrip().endswith("::")
            and following is not None
            and _indent(lines[following]) > _indent(line)
        ):
            lead = line.rstrip()[:-1]
            out.append("" if lead.strip() == ":" else lead)
            depth = _indent(lines[following])  # the block ends at the first line less indented
            end = following
            while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) >= depth):
                end += 1
            while end > following and not lines[end - 1].strip():
                end -= 1
            pad = " " * _indent(line)
            block = [pad + row[depth:] if row.strip() else "" for row in lines[following:end]]
            out += ["", f"{pad}```text", *block, f"{pad}```", ""]
            i = end
            continue
        out.append(line)
        i += 1
    return "\n".join(out)
