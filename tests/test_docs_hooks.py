"""docs/plugins.md documents every hook with the signature plait.hookspecs declares
(datasette's tests/test_docs.py does the same for its hooks).

Each hook has a heading ``### `name(arg, ...)` `` whose argument names are the
hookspec's, followed by a Python block ``def name(arg: type, ...) -> None: ...``
whose names and annotations are the hookspec's; a registration hook's section
shows its ``register(...)`` callback with the parameter names of its protocol.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from plait import hookspecs

DOCS = Path(__file__).parent.parent / "docs" / "plugins.md"
HEADING = re.compile(r"^### `(\w+)\(([^)]*)\)`$", re.MULTILINE)
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _hookspecs() -> dict[str, Any]:
    return {
        name: fn
        for name, fn in vars(hookspecs).items()
        if inspect.isfunction(fn) and hasattr(fn, f"{hookspecs.PROJECT_NAME}_spec")
    }


def _sections() -> dict[str, tuple[list[str], str]]:
    """Hook name -> (the argument names of its heading, the text up to the next heading)."""
    text = DOCS.read_text()
    headings = list(HEADING.finditer(text))
    sections = {}
    for heading, following in zip(headings, [*headings[1:], None], strict=True):
        end = following.start() if following is not None else len(text)
        next_heading = text.find("\n##", heading.end())
        if 0 <= next_heading < end:
            end = next_heading
        args = [a.strip() for a in heading.group(2).split(",") if a.strip()]
        assert heading.group(1) not in sections, f"{heading.group(1)} is documented twice"
        sections[heading.group(1)] = (args, text[heading.end() : end])
    return sections


SPECS = _hookspecs()
SECTIONS = _sections()


def test_every_hookspec_is_documented_and_every_documented_hook_exists() -> None:
    assert len(SPECS) >= 11
    assert sorted(SPECS) == sorted(SECTIONS), "docs/plugins.md and plait.hookspecs disagree on the hooks"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_the_documented_signature_is_the_hookspecs(name: str) -> None:
    spec = inspect.signature(SPECS[name])
    args, section = SECTIONS[name]
    assert args == list(spec.parameters), f"the heading of {name} shows {args}"
    blocks = BLOCK.findall(section)
    assert blocks, f"{name}: no ```python block with its typed signature"
    shown = next((node for node in ast.walk(ast.parse(blocks[0])) if isinstance(node, ast.FunctionDef)), None)
    assert shown is not None and shown.name == name, f"{name}: the first block does not define it"
    documented = {a.arg: ast.unparse(a.annotation) if a.annotation else None for a in shown.args.args}
    declared = {p.name: p.annotation for p in spec.parameters.values()}  # strings: postponed annotations
    assert documented == declared, f"{name}: docs show {documented}, hookspecs declare {declared}"
    assert shown.returns is not None and ast.unparse(shown.returns) == spec.return_annotation


@pytest.mark.parametrize("name", sorted(n for n in SPECS if n.startswith("register_")))
def test_a_registration_hook_shows_its_register_callback(name: str) -> None:
    protocol = getattr(hookspecs, str(inspect.signature(SPECS[name]).parameters["register"].annotation))
    params = list(inspect.signature(protocol.__call__).parameters)[1:]  # without self
    shown = f"`register({', '.join(params)})`"
    assert shown in SECTIONS[name][1], f"{name}: the section does not show {shown}"
