"""Graphs of workflows: :func:`to_graph` (a JSON-able dict) and :func:`to_mermaid` (a
Mermaid flowchart), behind ``workflow.to_graph()`` and ``workflow.to_mermaid()``.

Both read the tree through :meth:`StepNode.children` and name nodes with the step ids the
checkpoints use, taken from :func:`plait._fork.step_ids` (a Loop's children as
``loop[*]/child``, since their checkpoints are ``loop[1]/child``, ``loop[2]/child``...).
A step type of a plugin is drawn as a plain step.
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from plait._containers import Condition, Loop, Parallel, Router, Steps
from plait._fork import step_ids
from plait._node import StepNode
from plait._step import Step
from plait.approval import Approval

__all__ = ["MAX_LABEL", "kind_of", "mermaid_label", "to_graph", "to_mermaid"]

#: the longest name a Mermaid label shows (longer ones end with "…")
MAX_LABEL = 60

_KINDS: tuple[tuple[type[StepNode], str], ...] = (
    (Steps, "steps"),
    (Parallel, "parallel"),
    (Condition, "condition"),
    (Loop, "loop"),
    (Router, "router"),
    (Approval, "approval"),
)


def kind_of(node: StepNode) -> str:
    """What a node is: step, agent, team, function, workflow, steps, parallel, condition,
    loop, router or approval (``step`` for a step type of a plugin)."""
    if isinstance(node, Step):
        if node.workflow is not None:
            return "workflow"
        if node.executor is not None:
            return "function"
        return "team" if node.executor_type == "team" else "agent"
    for cls, kind in _KINDS:
        if isinstance(node, cls):
            return kind
    return "step"


@dataclass
class _Vertex:
    """One node of the tree with its step id, its kind and the vertices inside it."""

    step_id: str
    node: StepNode
    kind: str
    children: list[_Vertex] = field(default_factory=list)


def _vertices(nodes: list[StepNode]) -> list[_Vertex]:
    """The tree as vertices; ids come from :func:`step_ids`, which walks the same tree in the
    same order (depth first, :meth:`StepNode.children` in order)."""
    ids: Iterator[str] = iter(step_ids(nodes))

    def visit(node: StepNode) -> _Vertex:
        vertex = _Vertex(next(ids), node, kind_of(node))
        vertex.children = [visit(child) for child in node.children()]
        return vertex

    top = [visit(node) for node in nodes]
    assert next(ids, None) is None, "the graph and plait._fork.step_ids walked different trees"
    return top


def _callable_name(fn: Any) -> str | None:
    if fn is None:
        return None
    return getattr(fn, "__name__", None) or type(fn).__name__


def _split(vertex: _Vertex, *sizes: int) -> list[list[_Vertex]]:
    """A vertex's children cut into consecutive groups of the given sizes."""
    groups, start = [], 0
    for size in sizes:
        groups.append(vertex.children[start : start + size])
        start += size
    return groups


def _approval_groups(vertex: _Vertex) -> tuple[dict[str, list[_Vertex]], list[_Vertex] | None]:
    """An approval's children as its routes (choice -> vertices) and its on_reject steps."""
    node = vertex.node
    assert isinstance(node, Approval)
    sizes = [len(steps) for steps in node.routes.values()]
    rejected = node.on_reject if isinstance(node.on_reject, list) else None
    groups = _split(vertex, *sizes, len(rejected or ()))
    routes = dict(zip(node.routes, groups[: len(sizes)], strict=True))
    return routes, (groups[-1] if rejected is not None else None)


# -- JSON ------------------------------------------------------------------------------


def _details(vertex: _Vertex) -> dict[str, Any]:
    """What a node of ``kind`` adds to the common fields."""
    node, kind = vertex.node, vertex.kind
    ids = [child.step_id for child in vertex.children]
    if isinstance(node, Step):
        if node.workflow is not None:
            return {"workflow": {"id": node.workflow.id, "name": node.workflow.name}, "python": not ids}
        if node.executor is not None:
            return {"executor": _callable_name(node.executor)}
        return {kind: getattr(node.agent, "name", None)}
    if isinstance(node, Condition):
        then, other = _split(vertex, len(node.steps), len(node.else_steps))
        evaluator = node.evaluator if isinstance(node.evaluator, bool) else _callable_name(node.evaluator)
        return {
            "evaluator": evaluator,
            "then": [v.step_id for v in then],
            "else": [v.step_id for v in other],
        }
    if isinstance(node, Router):
        return {"selector": _callable_name(node.selector), "choices": ids}
    if isinstance(node, Loop):
        return {
            "max_iterations": node.max_iterations,
            "end_condition": _callable_name(node.end_condition),
            "forward_iteration_output": node.forward_iteration_output,
        }
    if isinstance(node, Parallel):
        return {"max_concurrency": node.max_concurrency}
    if isinstance(node, Approval):
        routes, rejected = _approval_groups(vertex)
        return {
            "approval": node.kind,
            "prompt": node.prompt,
            "choices": node.choices,
            "routes": {choice: [v.step_id for v in steps] for choice, steps in routes.items()},
            "on_reject": [v.step_id for v in rejected] if rejected is not None else node.on_reject,
        }
    return {}


def _sequence_edges(vertices: list[_Vertex], edges: list[dict[str, Any]]) -> None:
    for a, b in itertools.pairwise(vertices):
        edges.append({"source": a.step_id, "target": b.step_id, "kind": "next"})


def _inner_edges(vertex: _Vertex, edges: list[dict[str, Any]]) -> None:
    """The edges inside a container (see :func:`to_graph` for their kinds)."""
    node, children = vertex.node, vertex.children

    def enter(target: list[_Vertex], kind: str, label: str | None = None) -> None:
        if target:
            edge = {"source": vertex.step_id, "target": target[0].step_id, "kind": kind}
            if label is not None:
                edge["label"] = label
            edges.append(edge)
            _sequence_edges(target, edges)

    if isinstance(node, Parallel):
        for child in children:
            enter([child], "branch")
    elif isinstance(node, Router):
        for child in children:
            enter([child], "choice")
    elif isinstance(node, Condition):
        then, other = _split(vertex, len(node.steps), len(node.else_steps))
        enter(then, "then")
        enter(other, "else")
    elif isinstance(node, Approval):
        routes, rejected = _approval_groups(vertex)
        for choice, steps in routes.items():
            enter(steps, "route", choice)
        enter(rejected or [], "rejected")
    else:  # Steps, Loop, a nested workflow, a plugin's container: a sequence
        _sequence_edges(children, edges)
        if isinstance(node, Loop):
            edges.append({"source": children[-1].step_id, "target": children[0].step_id, "kind": "repeat"})
    for child in children:
        _inner_edges(child, edges)


def to_graph(workflow: Any) -> dict[str, Any]:
    """The workflow's tree as a JSON-able dict; see :meth:`plait.Workflow.to_graph`."""
    info = {"id": workflow.id, "name": workflow.name, "description": workflow.description}
    if not workflow.nodes:  # steps=fn: the steps are whatever the function does at run time
        name = _callable_name(getattr(workflow._function, "fn", None)) or "steps"
        node: dict[str, Any] = {
            "id": name,
            "name": name,
            "kind": "function",
            "step_type": "Function",
            "description": "a fully-Python workflow: its steps are what this function does",
            "parent": None,
            "children": [],
            "python": True,
        }
        return {"workflow": info, "python": True, "nodes": [node], "edges": []}
    top = _vertices(workflow.nodes)
    nodes: list[dict[str, Any]] = []

    def add(vertex: _Vertex, parent: str | None) -> None:
        nodes.append(
            {
                "id": vertex.step_id,
                "name": vertex.node.name,
                "kind": vertex.kind,
                "step_type": vertex.node.step_type,
                "description": vertex.node.description,
                "parent": parent,
                "children": [child.step_id for child in vertex.children],
                **_details(vertex),
            }
        )
        for child in vertex.children:
            add(child, vertex.step_id)

    for vertex in top:
        add(vertex, None)
    edges: list[dict[str, Any]] = [{"source": "__start__", "target": top[0].step_id, "kind": "next"}]
    _sequence_edges(top, edges)
    edges.append({"source": top[-1].step_id, "target": "__end__", "kind": "next"})
    for vertex in top:
        _inner_edges(vertex, edges)
    return {"workflow": info, "python": False, "nodes": nodes, "edges": edges}


# -- Mermaid ---------------------------------------------------------------------------

#: characters that would end or change a quoted Mermaid label, as Mermaid's entity codes
_ENTITIES = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "`": "#96;"}
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F)}


def mermaid_label(text: str, limit: int = MAX_LABEL) -> str:
    """``text`` safe inside a quoted Mermaid label: on one line, at most ``limit`` characters
    (then "…"), control and direction characters shown as ``\\xNN``/``\\uNNNN`` escapes,
    quotes, ``#``, ``<``, ``>``, ``&`` and backticks as Mermaid's entity codes."""
    shown = []
    for char in " ".join(text.split()):  # newlines, tabs, U+2028...: one space
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Co", "Cn") or char in _BIDI:
            shown.append(f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")
        else:
            shown.append(char)
    if len(shown) > limit:
        shown = [*shown[: limit - 1], "…"]
    return "".join(_ENTITIES.get(char, char) for char in shown)


_SHAPES = {  # kind -> (opening, closing) of its node
    "function": ("[", "]"),
    "agent": ("(", ")"),
    "team": ("[[", "]]"),
    "step": ("[", "]"),
    "approval": ("{{", "}}"),
    "condition": ("{", "}"),
    "router": ("{", "}"),
    "fork": ("[/", "\\]"),
    "join": ("[\\", "/]"),
    "python": ("[[", "]]"),
}
_ICONS = {"approval": "⏸ ", "condition": "? ", "router": "⤳ ", "fork": "⫘ ", "steps": "☰ ", "workflow": "◆ "}

Exit = tuple[str, str | None]  # a drawn node an edge leaves from, and that edge's label


class _Drawing:
    """Mermaid lines being written: node definitions (nested in subgraphs) and edges (all
    after the definitions, so an edge never places a node in the wrong subgraph)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.edges: list[str] = []
        self.count = 0
        self.depth = 1

    def new_id(self) -> str:
        self.count += 1
        return f"n{self.count}"

    def node(self, kind: str, text: str) -> str:
        ident = self.new_id()
        opening, closing = _SHAPES[kind]
        self.lines.append(
            f'{"    " * self.depth}{ident}{opening}"{_ICONS.get(kind, "")}{mermaid_label(text)}"{closing}'
        )
        return ident

    def edge(self, exits: list[Exit], target: str, label: str | None = None, dotted: bool = False) -> None:
        for source, exit_label in exits:
            shown = label if label is not None else exit_label
            arrow = "-.->" if dotted else "-->"
            text = f'|"{mermaid_label(shown)}"|' if shown else ""
            self.edges.append(f"    {source} {arrow}{text} {target}")

    def subgraph(self, title: str, draw: Callable[[], tuple[str, list[Exit]]]) -> tuple[str, list[Exit]]:
        """Draw ``draw()``'s nodes inside a subgraph titled ``title`` (already escaped)."""
        ident = self.new_id()
        self.lines.append(f'{"    " * self.depth}subgraph {ident}["{title}"]')
        self.depth += 1
        result = draw()
        self.depth -= 1
        self.lines.append(f"{'    ' * self.depth}end")
        return result

    def sequence(self, vertices: list[_Vertex]) -> tuple[str, list[Exit]]:
        """Draw vertices one after the other: (the first's entry, the last's exits)."""
        entry, exits = self.vertex(vertices[0])
        for vertex in vertices[1:]:
            following, after = self.vertex(vertex)
            self.edge(exits, following)
            exits = after
        return entry, exits

    def vertex(self, vertex: _Vertex) -> tuple[str, list[Exit]]:
        """Draw one vertex: (the node an edge into it enters, the exits an edge out leaves)."""
        node, kind = vertex.node, vertex.kind
        name = node.name
        if isinstance(node, Parallel):
            fork = self.node("fork", name)
            join_exits = [self.vertex(child) for child in vertex.children]
            join = self.node("join", "join")
            for entry, exits in join_exits:
                self.edge([(fork, None)], entry)
                self.edge(exits, join)
            return fork, [(join, None)]
        if isinstance(node, (Condition, Router)):
            decision = self.node(kind, name)
            if isinstance(node, Router):
                exits = []
                for child in vertex.children:
                    entry, out = self.vertex(child)
                    self.edge([(decision, None)], entry, dotted=True)
                    exits.extend(out)
                return decision, exits
            then, other = _split(vertex, len(node.steps), len(node.else_steps))
            entry, exits = self.sequence(then)
            self.edge([(decision, None)], entry, "then")
            if not other:
                return decision, [*exits, (decision, "else")]
            entry, more = self.sequence(other)
            self.edge([(decision, None)], entry, "else")
            return decision, [*exits, *more]
        if isinstance(node, Approval):
            asked = self.node("approval", name)
            routes, rejected = _approval_groups(vertex)
            exits = [] if routes and set(routes) == set(node.choices or ()) else [(asked, None)]
            for choice, steps in [*routes.items(), ("rejected", rejected or [])]:
                if steps:
                    entry, out = self.sequence(steps)
                    self.edge([(asked, None)], entry, choice)
                    exits.extend(out)
            return asked, exits
        if isinstance(node, Loop):
            limit = f"up to {node.max_iterations} iterations"
            title = f"↻ {mermaid_label(name)} · {limit}"
            entry, exits = self.subgraph(title, lambda: self.sequence(vertex.children))
            self.edge(exits, entry, "repeat", dotted=True)
            return entry, exits
        if kind in ("steps", "workflow") or vertex.children:
            title = _ICONS.get(kind, "") + mermaid_label(name)
            if kind == "workflow" and not vertex.children:  # a fully-Python nested workflow
                inner = getattr(node, "workflow", None)
                return self.subgraph(title, lambda: self._python(inner))
            return self.subgraph(title, lambda: self.sequence(vertex.children))
        shown = name if kind != "step" else f"{node.step_type}: {name}"
        ident = self.node(kind, shown)
        return ident, [(ident, None)]

    def _python(self, workflow: Any) -> tuple[str, list[Exit]]:
        fn = _callable_name(getattr(workflow._function, "fn", None)) or "steps"
        ident = self.node("python", f"{fn}(): a fully-Python workflow")
        return ident, [(ident, None)]


def to_mermaid(workflow: Any) -> str:
    """The workflow as a Mermaid flowchart; see :meth:`plait.Workflow.to_mermaid`."""
    drawing = _Drawing()
    drawing.lines.append(f'    start(["▶ {mermaid_label(workflow.name)}"])')
    if workflow.nodes:
        entry, exits = drawing.sequence(_vertices(workflow.nodes))
    else:
        entry, exits = drawing._python(workflow)
    drawing.lines.append('    done(["■ end"])')
    drawing.edge([("start", None)], entry)
    drawing.edge(exits, "done")
    return "\n".join(["flowchart TD", *drawing.lines, *drawing.edges]) + "\n"
