"""Graphs of workflows: ``to_mermaid()``, ``to_graph()`` and ``plait graph``.

The Mermaid text is checked by a structural reader of the subset plait writes (node
definitions with their shapes, subgraphs, edges): every line is one it knows, every edge
joins defined nodes, subgraphs balance, labels hold no raw quote. (The output of this
file's workflows and of every example was also checked with Mermaid's own parser while
this was written; that parser is JavaScript, too heavy to pull into the test run.)
"""

from __future__ import annotations

import asyncio
import json
import re
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from plait import Condition, Loop, Parallel, Router, Step, Steps, Workflow
from plait._graph import MAX_LABEL, mermaid_label
from plait.approval import Approval
from plait.storage import MemoryStorage

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

SHAPES = {  # opening -> (closing, shape)
    '(["': ('"])', "stadium"),
    '[["': ('"]]', "subroutine"),
    '{{"': ('"}}', "hexagon"),
    '[/"': ('"\\]', "fork"),
    '[\\"': ('"/]', "join"),
    '["': ('"]', "rect"),
    '("': ('")', "round"),
    '{"': ('"}', "diamond"),
}
NODE = re.compile(r"^\s*(\w+)(\(\[\"|\[\[\"|\{\{\"|\[/\"|\[\\\"|\[\"|\(\"|\{\")(.*)$")
EDGE = re.compile(r'^\s*(\w+) (-->|-\.->)(?:\|"([^"]*)"\|)? (\w+)$')
SUBGRAPH = re.compile(r'^\s*subgraph (\w+)\["([^"]*)"\]$')


def parse(text: str) -> dict[str, Any]:
    """The nodes (id -> shape, label, enclosing subgraph), subgraphs and edges of the text."""
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    nodes: dict[str, dict[str, Any]] = {}
    subgraphs: dict[str, dict[str, Any]] = {}
    edges: list[tuple[str, str, str, str | None]] = []
    stack: list[str] = []
    for line in lines[1:]:
        if match := SUBGRAPH.match(line):
            assert match.group(1) not in nodes and match.group(1) not in subgraphs
            subgraphs[match.group(1)] = {"label": match.group(2), "parent": stack[-1] if stack else None}
            stack.append(match.group(1))
        elif line.strip() == "end":
            assert stack, "an end without a subgraph"
            stack.pop()
        elif match := EDGE.match(line):
            edges.append((match.group(1), match.group(4), match.group(2), match.group(3)))
        elif match := NODE.match(line):
            ident, opening, rest = match.groups()
            closing, shape = SHAPES[opening]
            assert rest.endswith(closing), line
            label = rest[: -len(closing)]
            assert '"' not in label, line
            assert ident not in nodes and ident not in subgraphs, f"{ident} defined twice"
            nodes[ident] = {"shape": shape, "label": label, "in": stack[-1] if stack else None}
        else:
            raise AssertionError(f"a line plait does not write: {line!r}")
    assert not stack, "a subgraph is not closed"
    for source, target, _, _ in edges:
        assert source in nodes and target in nodes, f"an edge to an undefined node: {source} -> {target}"
    return {"nodes": nodes, "subgraphs": subgraphs, "edges": edges}


def by_label(graph: dict[str, Any], label: str) -> str:
    found = [i for i, n in graph["nodes"].items() if n["label"] == label]
    assert len(found) == 1, (label, found)
    return found[0]


def write(step_input: Any) -> str:
    return "w"


def check(step_input: Any) -> str:
    return "c"


def done_enough(outputs: Any) -> bool:
    return True


def build() -> Workflow:
    """A workflow with every container, nested two levels deep."""
    deepest = Workflow(name="deepest", steps=[Step(name="draft", executor=write)])
    inner = Workflow(
        name="inner",
        steps=[
            Parallel(Step(name="web", executor=write), deepest, name="research"),
            Loop(name="refine", steps=[check, write], end_condition=done_enough, max_iterations=4),
        ],
    )
    return Workflow(
        name="Everything",
        steps=[
            inner,
            Condition(name="long?", evaluator=True, steps=[write], else_steps=[check]),
            Condition(name="polish?", evaluator=lambda si: False, steps=[check]),
            Router(name="topic", selector=lambda si: "write", choices=[write, [check, write]]),
            Steps(name="finish", steps=[Approval(name="publish", on_reject=[check]), write]),
        ],
    )


def test_the_mermaid_of_every_container_nested_two_levels() -> None:
    graph = parse(build().to_mermaid())
    nodes, edges = graph["nodes"], graph["edges"]
    titles = {s["label"]: i for i, s in graph["subgraphs"].items()}
    assert set(titles) == {
        "◆ inner",
        "◆ deepest",
        "↻ refine · up to 4 iterations",
        "☰ steps_group_1",
        "☰ finish",
    }
    assert graph["subgraphs"][titles["◆ deepest"]]["parent"] == titles["◆ inner"]
    assert graph["subgraphs"][titles["↻ refine · up to 4 iterations"]]["parent"] == titles["◆ inner"]
    draft = by_label(graph, "draft")
    assert nodes[draft]["in"] == titles["◆ deepest"]
    # Parallel: a fork to each branch, each branch to the join
    fork, join = by_label(graph, "⫘ research"), by_label(graph, "join")
    assert nodes[fork]["shape"] == "fork" and nodes[join]["shape"] == "join"
    web = by_label(graph, "web")
    assert (fork, web, "-->", None) in edges and (fork, draft, "-->", None) in edges
    assert (web, join, "-->", None) in edges and (draft, join, "-->", None) in edges
    # Loop: a back edge from its last step to its first
    refine = titles["↻ refine · up to 4 iterations"]
    first, last = (i for i, n in nodes.items() if n["in"] == refine)
    assert (join, first, "-->", None) in edges
    assert (last, first, "-.->", "repeat") in edges
    # Condition with else: a diamond with then and else edges
    long = by_label(graph, "? long?")  # "? " is a condition's icon
    assert nodes[long]["shape"] == "diamond"
    outgoing = {label: target for source, target, _, label in edges if source == long}
    assert set(outgoing) == {"then", "else"}
    assert nodes[outgoing["then"]]["label"] == "write" and nodes[outgoing["else"]]["label"] == "check"
    # Condition without else: its else edge goes on to the next step, the router
    polish, topic = by_label(graph, "? polish?"), by_label(graph, "⤳ topic")
    assert (polish, topic, "-->", "else") in edges
    # Router: a diamond with one (dotted) edge per choice
    choices = [target for source, target, arrow, _ in edges if source == topic]
    assert len(choices) == 2 and all(a == "-.->" for s, _, a, _ in edges if s == topic)
    # approval: a hexagon, its rejected steps on a labelled edge
    publish = by_label(graph, "⏸ publish")
    assert nodes[publish]["shape"] == "hexagon"
    assert any(s == publish and label == "rejected" for s, _, _, label in edges)
    # start and end around it all
    assert nodes["start"]["label"] == "▶ Everything" and nodes["done"]["shape"] == "stadium"
    finish = titles["☰ finish"]
    last_write = next(i for i, n in nodes.items() if n["in"] == finish and n["label"] == "write")
    assert (publish, last_write, "-->", None) in edges  # approved: straight on
    into_last = [s for s, t, _, _ in edges if t == last_write]
    assert len(into_last) == 2 and nodes[into_last[1]]["label"] == "check"  # rejected: its steps first
    assert [s for s, t, _, _ in edges if t == "done"] == [last_write]
    assert len(edges) == len(set(edges))


def test_mermaid_labels_escape_nasty_names() -> None:
    assert mermaid_label('say "hi" [now] {x} #1 <b>&`') == (
        "say #quot;hi#quot; [now] {x} #35;1 #lt;b#gt;#amp;#96;"
    )
    assert mermaid_label("a\x00b\nc\u202ed") == "a\\x00b c\\u202ed"
    assert mermaid_label("日本 ✓ 🚀") == "日本 ✓ 🚀"
    long = mermaid_label("x" * 500)
    assert len(long) == MAX_LABEL and long.endswith("…")
    nasty = ['q"uo"te', "br]ack[et", "nul\x00l", "end", "x" * 300, "日本語", "%%comment", "a\r\nb"]
    workflow = Workflow(
        name='wf "x" end',
        steps=[Step(name=name, executor=write) for name in nasty] + [Approval(name="`tick`")],
    )
    graph = parse(workflow.to_mermaid())
    labels = [n["label"] for n in graph["nodes"].values()]
    for label in labels:
        assert len(label) <= 2 + MAX_LABEL * 6 and "\x00" not in label and "\n" not in label
    assert "q#quot;uo#quot;te" in labels and "nul\\x00l" in labels and "日本語" in labels
    assert "end" in labels and "a b" in labels and "⏸ #96;tick#96;" in labels


def test_the_json_graph_round_trips_and_names_nodes_by_their_step_ids() -> None:
    graph = build().to_graph()
    assert json.loads(json.dumps(graph)) == graph
    nodes = {node["id"]: node for node in graph["nodes"]}
    assert nodes["inner"]["kind"] == "workflow" and nodes["inner"]["children"] == [
        "inner/research",
        "inner/refine",
    ]
    assert nodes["inner/research"]["kind"] == "parallel"
    assert nodes["inner/research/deepest/draft"]["kind"] == "function"
    assert (
        nodes["inner/refine"]["max_iterations"] == 4
        and nodes["inner/refine"]["end_condition"] == "done_enough"
    )
    assert nodes["inner/refine[*]/check"]["parent"] == "inner/refine"
    assert nodes["long?"]["then"] == ["long?/write"] and nodes["long?"]["else"] == ["long?/check"]
    assert nodes["polish?"]["evaluator"] == "<lambda>" and nodes["polish?"]["else"] == []
    assert nodes["topic"]["choices"] == ["topic/write", "topic/steps_group_1"]
    assert nodes["finish/publish"]["kind"] == "approval"
    assert nodes["finish/publish"]["on_reject"] == ["finish/publish/check"]
    kinds = {(e["source"], e["target"]): e["kind"] for e in graph["edges"]}
    assert kinds[("__start__", "inner")] == "next" and kinds[("finish", "__end__")] == "next"
    assert kinds[("inner/research", "inner/research/web")] == "branch"
    assert kinds[("inner/refine[*]/write", "inner/refine[*]/check")] == "repeat"
    assert kinds[("long?", "long?/check")] == "else"
    assert kinds[("topic", "topic/steps_group_1")] == "choice"
    assert kinds[("finish/publish", "finish/publish/check")] == "rejected"
    for edge in graph["edges"]:
        assert {edge["source"], edge["target"]} <= {*nodes, "__start__", "__end__"}


def test_the_graph_ids_are_the_checkpoint_ids_of_a_run() -> None:
    storage = MemoryStorage()
    workflow = Workflow(
        name="ids",
        storage=storage,
        steps=[
            Workflow(name="inner", steps=[Step(name="draft", executor=write)]),
            Parallel(Step(name="web", executor=write), Step(name="a/b", executor=check), name="research"),
            Loop(name="loop", steps=[write], max_iterations=2),
        ],
    )
    output = workflow.run("go")
    stored = asyncio.run(storage.load_checkpoints(output.run_id))
    patterns = {re.sub(r"\[\d+\]", "[*]", c.step_id) for c in stored}
    graph_ids = {node["id"] for node in workflow.to_graph()["nodes"]}
    assert patterns == graph_ids
    assert {"inner/draft", "research/a%2Fb", "loop[*]/write"} <= graph_ids


def test_a_fully_python_workflow_is_one_node_saying_so() -> None:
    def plan(workflow: Any, execution_input: Any) -> str:
        return "done"

    workflow = Workflow(name="py", steps=plan)
    graph = workflow.to_graph()
    assert graph["python"] is True and len(graph["nodes"]) == 1
    assert graph["nodes"][0]["name"] == "plan" and "fully-Python" in graph["nodes"][0]["description"]
    drawn = parse(workflow.to_mermaid())
    assert set(drawn["nodes"]) == {"start", "done", "n1"}
    assert drawn["nodes"]["n1"]["label"] == "plan(): a fully-Python workflow"
    assert [(s, t) for s, t, _, _ in drawn["edges"]] == [("start", "n1"), ("n1", "done")]


def _example_workflows() -> list[tuple[str, str]]:
    found = []
    for path in sorted(EXAMPLES.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        for name in re.findall(r"^(\w+) = Workflow\(", text, re.M):
            found.append((path.name, name))
    return found


EXAMPLE_WORKFLOWS = _example_workflows()


@pytest.mark.parametrize(("file", "name"), EXAMPLE_WORKFLOWS)
def test_every_example_workflow_has_a_graph(file: str, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    workflow = runpy.run_path(str(EXAMPLES / file), run_name="graph_test")[name]
    drawn = parse(workflow.to_mermaid())
    graph = workflow.to_graph()
    assert json.loads(json.dumps(graph)) == graph
    assert len(drawn["nodes"]) >= 3 and graph["nodes"]


def test_the_examples_include_the_deep_nested_one() -> None:
    assert ("deep_nested_workflow.py", "outer_workflow") in EXAMPLE_WORKFLOWS
    assert len(EXAMPLE_WORKFLOWS) >= 14


def plait(*args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("plait")), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_plait_graph_prints_mermaid_and_json() -> None:
    target = "examples/deep_nested_workflow.py:outer_workflow"
    mermaid = plait("graph", target)
    assert mermaid.returncode == 0, mermaid.stderr
    parse(mermaid.stdout)
    assert mermaid.stdout.count("subgraph ") >= 2 and "▶ Full Pipeline" in mermaid.stdout
    as_json = plait("graph", target, "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    graph = json.loads(as_json.stdout)
    assert graph["workflow"]["name"] == "Full Pipeline"
    assert any(node["id"].startswith("research/") for node in graph["nodes"])


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("examples/human_approval.py:nothing", "has no attribute 'nothing'"),
        ("examples/missing.py:workflow", "no such file"),
        ("no_such_module:workflow", "no module named 'no_such_module'"),
        ("examples/human_approval.py:Approval", "expected a Workflow"),
    ],
)
def test_plait_graph_of_a_bad_target_is_one_line(target: str, message: str) -> None:
    result = plait("graph", target)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
