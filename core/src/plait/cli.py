"""The ``plait`` command line: a client of the public API.

    plait plugins [--json]                      what is installed and what it registered
    plait run MODULE:WORKFLOW "input" [--json] [--strict]  run a workflow, streaming its events
    plait runs list | show ID | resume ID | approve ID | cancel ID   stored runs
    plait runs replay ID [--live]   the run again, every model and tool call answered from its record
    plait graph MODULE:WORKFLOW [--format mermaid|json]   a workflow's graph
    plait --version | --traceback COMMAND ...

A RUN_ID may be given by any unique prefix (like git): ``plait runs show 8a27705f``. Runs are
listed with the first 8 characters of their ids; ``--json`` prints the full ones.

Expected failures (a module that is not there, a store that is down, a failed step) are one or
two lines on stderr, exit 1 (2 for a usage error); ``--traceback``, anywhere on the command line,
shows the full traceback. Ctrl-C during ``plait run`` stores the run as cancelled and says how to
resume it (exit 130); a closed pipe (``plait runs list | head -1``) ends quietly.

Runs are stored in $PLAIT_STORAGE, by default the SQLite file .plait/plait.db.

Plugins add subcommands through the ``register_commands`` hook and options of
``plait run`` through ``register_run_options`` (plait-otlp adds ``--otlp``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

from plait._defaults import DEFAULT_STORAGE
from plait._io import normalize_status

__all__ = ["DEFAULT_STORAGE", "build_parser", "load_target", "main"]

#: how many characters of a run id are printed for people (like git's short hashes)
SHORT_ID = 8
#: how many stored runs a RUN_ID prefix is looked up among (newest first)
PREFIX_SCAN = 100_000
#: where a traceback was asked for (``--traceback``): the handlers show it with their message
_TRACEBACK = False


def short_id(run_id: str) -> str:
    """A run id as printed for people: its first :data:`SHORT_ID` characters."""
    return run_id[:SHORT_ID]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"plait {version('plait')}"
    except PackageNotFoundError:  # a source checkout that was not installed
        return "plait (not installed)"


class _Version(argparse.Action):
    """``--version``: the installed version, looked up only when asked (start-up stays fast)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        kwargs.pop("nargs", None)
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(_version())
        parser.exit()


def _fail(message: str, exc: BaseException | None = None) -> None:
    """An expected failure on stderr, one line per line of ``message``; with ``--traceback``,
    the traceback of ``exc`` first."""
    if exc is not None and _TRACEBACK:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    print(message, file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    from plait.plugins import get_registry

    parser = argparse.ArgumentParser(
        prog="plait", description="Deterministic, production-grade LLM workflows."
    )
    parser.add_argument("--version", action=_Version, help="print plait's version and exit")
    parser.add_argument(
        "--traceback",
        action="store_true",
        help="on a failure, show the full traceback (anywhere on the line)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    plugins = sub.add_parser("plugins", help="list installed plugins, what they registered, and load errors")
    plugins.add_argument("--json", action="store_true", help="print JSON instead of a table")
    plugins.set_defaults(handler=_plugins)

    run = sub.add_parser("run", help="run a workflow (or agent) and stream its events to the console")
    run.add_argument("target", help="MODULE:NAME or path/to/file.py:NAME of a Workflow, Agent or Team")
    run.add_argument("input", nargs="?", default=None, help="the run's input")
    run.add_argument("--session-id", default=None, help="continue this session")
    run.add_argument("--user-id", default=None, help="the user the run is for (a workflow's run only)")
    run.add_argument("--json", action="store_true", help="print events as JSON lines instead")
    run.add_argument("--markdown", action="store_true", help="render the final content as Markdown")
    run.add_argument("--tree", action="store_true", help="show the run as a live tree of its steps")
    run.add_argument(
        "--strict", action="store_true", help="exit 1 when the run completed with errors (for CI)"
    )
    run.add_argument("--storage", default=None, help=f"where to store the run (default: {_storage_help()})")
    for _, entry in sorted(get_registry().entries("run_option").items()):
        configure_option, _apply = entry.value
        configure_option(run)
    run.set_defaults(handler=_run)

    runs = sub.add_parser("runs", help="stored runs: list, show, resume, approve, cancel, fork, diff, replay")
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="ACTION", required=True)
    listing = runs_sub.add_parser("list", help="the newest runs")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument(
        "--status", default=None, help=f"only runs with this status ({', '.join(_statuses())})"
    )
    listing.add_argument("--user-id", default=None, help="only runs of this user (run(..., user_id=...))")
    show = runs_sub.add_parser("show", help="a run's step tree with status, durations and tokens")
    show.add_argument("run_id")
    show.add_argument("--step", default=None, help="one step's input, output and state change")
    resume = runs_sub.add_parser("resume", help="continue an interrupted or failed run from its checkpoints")
    resume.add_argument("run_id")
    resume.add_argument(
        "--wait",
        action="store_true",
        help="wait while another process executes the run (until its lease ends)",
    )
    approve = runs_sub.add_parser("approve", help="answer a paused run and continue it")
    approve.add_argument("run_id")
    approve.add_argument("--step", default=None, help="the waiting step's id (default: the only one)")
    answer = approve.add_mutually_exclusive_group()
    answer.add_argument("--reject", action="store_true", help="reject instead of approve")
    answer.add_argument("--answer", default=None, help="the answer: JSON for input steps, a name for choices")
    cancel = runs_sub.add_parser("cancel", help="cancel a running run (it stops before its next step)")
    cancel.add_argument("run_id")
    fork, diff = _time_travel_parsers(runs_sub)
    replay = _replay_parser(runs_sub)
    for command in (listing, show, resume, approve, cancel, fork, diff, replay):
        command.add_argument("--storage", default=None, help=f"the run store (default: {_storage_help()})")
        command.add_argument("--json", action="store_true", help="print JSON")
    for command in (resume, approve, fork, replay):
        command.add_argument(
            "--workflow", default=None, help="MODULE:NAME of the workflow (default: recorded with the run)"
        )
    runs.set_defaults(handler=_runs)

    from plait import _cli_graph

    _cli_graph.configure(sub.add_parser("graph", help=_cli_graph.HELP), load_target)

    for name, entry in sorted(get_registry().entries("command").items()):
        configure, handler, help_text = entry.value
        command = sub.add_parser(name, help=f"{help_text} (from {entry.plugin})")
        configure(command)
        command.set_defaults(handler=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``plait``: parse ``argv`` (default: the command line), run the command, return its exit
    code. An unexpected error is one line (the traceback with ``--traceback``)."""
    global _TRACEBACK
    given = list(sys.argv[1:] if argv is None else argv)
    end = given.index("--") if "--" in given else len(given)
    _TRACEBACK = "--traceback" in given[:end]  # a global option, accepted anywhere
    given = [a for i, a in enumerate(given) if a != "--traceback" or i >= end]
    try:
        return _main(given)
    except BrokenPipeError:
        # `plait runs list | head -1`: the reader has gone; say nothing more (and let Python's
        # own flush at exit find nothing to write)
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # a stdout without a file descriptor (captured in a test)
            pass
        return 141  # 128 + SIGPIPE, as a shell reports a command a closed pipe ended
    except KeyboardInterrupt:
        print("plait: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if _TRACEBACK:
            raise
        message = " ".join(str(exc).split()) or "(no message)"
        print(f"plait: {type(exc).__name__}: {message}", file=sys.stderr)
        print("plait: run it again with --traceback to see where", file=sys.stderr)
        return 1


def _main(argv: list[str]) -> int:
    if argv == ["--version"]:  # without loading the plugins
        print(_version())
        return 0
    parser = build_parser()
    _check_plugin_options(argv)
    args, extra = parser.parse_known_args(argv)
    if (
        getattr(args, "command", None) == "run"
        and args.input is None
        and len(extra) == 1
        and not extra[0].startswith("-")
    ):
        args.input = extra.pop()  # the input after options: plait run wf:x --json '{"a": 1}'
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    result = handler(args)
    return int(result or 0)


def _statuses() -> list[str]:
    from plait._io import RunStatus

    return sorted({member.value.lower() for member in RunStatus})


def _check_plugin_options(argv: list[str]) -> None:
    """A plugin's ``plait run`` option given while the plugin is not installed: say what to install."""
    if not argv or argv[0] != "run":
        return
    from plait.plugins import KNOWN_DISTRIBUTIONS, get_registry

    registered = get_registry().entries("run_option")
    for given in argv[1:]:
        if given == "--":
            return
        name = given.partition("=")[0].removeprefix("--")
        distribution = KNOWN_DISTRIBUTIONS.get(("run_option", name))
        if given.startswith("--") and distribution is not None and name not in registered:
            raise SystemExit(
                f"plait: --{name} comes from the {distribution} plugin: pip install {distribution}"
            )


def _plugins(args: argparse.Namespace) -> int:
    from plait.plugins import get_registry

    registry = get_registry()
    plugins: list[dict[str, Any]] = [
        {
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "hooks": info.hooks,
            "registered": [{"kind": r.kind, "key": r.key} for r in info.registered],
        }
        for info in registry.plugins.values()
    ]
    errors = [{"name": e.name, "distribution": e.distribution, "error": e.error} for e in registry.errors]
    if args.json:
        print(json.dumps({"plugins": plugins, "errors": errors}, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="plait plugins")
    for column in ("plugin", "distribution", "version", "hooks", "registered"):
        table.add_column(column)
    for plugin in plugins:
        registered = ", ".join(f"{r['kind']}:{r['key']}" for r in plugin["registered"])
        table.add_row(
            plugin["name"],
            plugin["distribution"] or "",
            plugin["version"] or "",
            "\n".join(plugin["hooks"]),
            registered,
        )
    console.print(table)
    for error in errors:
        console.print(
            f"[red]failed to load[/red] {error['name']} ({error['distribution']}): {error['error']}"
        )
    return 0


def load_target(spec: str) -> Any:
    """Import ``module:name`` or ``path/to/file.py:name`` and return the object."""
    module_part, sep, attr = spec.rpartition(":")
    if not sep or not module_part or not attr:
        raise SystemExit(f"plait: expected MODULE:NAME or FILE.py:NAME, got {spec!r}")
    if module_part.endswith(".py"):
        path = Path(module_part).resolve()
        if not path.exists():
            raise SystemExit(f"plait: no such file {module_part!r}")
        sys.path.insert(0, str(path.parent))
        loaded = importlib.util.spec_from_file_location(path.stem, path)
        assert loaded is not None and loaded.loader is not None
        module = importlib.util.module_from_spec(loaded)
        sys.modules[path.stem] = module
        loaded.loader.exec_module(module)
    else:
        sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(module_part)
        except ModuleNotFoundError as exc:
            if exc.name is None or not (module_part == exc.name or module_part.startswith(exc.name + ".")):
                raise  # the module is there, and something it imports is not: the user's error
            raise SystemExit(
                f"plait: no module named {exc.name!r} (from {spec!r}); run plait in the directory"
                " that holds it, or give the file: path/to/file.py:NAME"
            ) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise SystemExit(f"plait: {module_part!r} has no attribute {attr!r}") from None


def _run(args: argparse.Namespace) -> int:
    from plait.errors import PlaitError, StepError
    from plait.plugins import get_registry

    for _, entry in sorted(get_registry().entries("run_option").items()):
        _configure, apply_option = entry.value
        apply_option(args)
    target = load_target(args.target)
    if not hasattr(target, "run"):
        raise SystemExit(
            f"plait: {args.target} is {type(target).__name__}, expected a Workflow, Agent or Team"
        )
    options: dict[str, Any] = {"session_id": args.session_id} if args.session_id else {}
    from plait.workflow import Workflow

    if args.user_id is not None:
        if not isinstance(target, Workflow):
            raise SystemExit(
                f"plait: --user-id is for a Workflow's run; {args.target} is {type(target).__name__}"
            )
        options["user_id"] = args.user_id
    run_id = None
    if isinstance(target, Workflow):
        if args.storage or target.storage is None:
            target.storage = _storage_url(args.storage)
        target.target = _absolute_target(args.target)
        from plait._ids import new_id

        run_id = options["run_id"] = new_id()  # known before the run: Ctrl-C says how to resume it
    output: Any = None
    try:
        if args.json:
            for event in target.run(args.input, stream=True, stream_events=True, **options):
                print(event.to_json(), flush=True)
            if args.strict:
                output = target.get_last_run_output()
        else:
            from plait.console import print_run, print_summary

            if args.tree and isinstance(target, Workflow):
                from rich.console import Console

                from plait.sinks import TreeSink, flush_sinks

                output = target.run(args.input, sinks=[TreeSink()], **options)
                flush_sinks()
                print_summary(Console(), target, output, args.markdown)
            else:
                output = print_run(target, args.input, stream=True, markdown=args.markdown, options=options)
    except KeyboardInterrupt:
        if run_id is None:
            print("plait: cancelled", file=sys.stderr)
        else:
            print(f"plait: cancelled; resume with `plait runs resume {short_id(run_id)}`", file=sys.stderr)
        return 130
    except PlaitError as exc:
        message = " ".join(str(exc).split())  # a driver's or pydantic's message may wrap
        if not isinstance(exc, StepError):  # the storage, the input, a plugin: what to change
            _fail(f"plait: {message}", exc)
            return 1
        where = "" if _TRACEBACK else "--traceback shows where it failed"
        if run_id is not None and _stored(target, run_id):
            then = f"once fixed, resume with `plait runs resume {short_id(run_id)}`"
            where = f"{then}; {where}" if where else then
        _fail(f"plait: run failed: {message}" + (f"\nplait: {where}" if where else ""), exc)
        return 1
    if args.strict and output is not None and str(getattr(output, "status", "")) == "COMPLETED_WITH_ERRORS":
        print("plait: the run completed with errors (--strict)", file=sys.stderr)
        return 1
    return 0


def _stored(target: Any, run_id: str) -> bool:
    """Whether the run ``run_id`` of ``target`` reached its storage (a failed run can be resumed)."""
    from plait._sync import run_sync
    from plait.storage import resolve_storage

    if not isinstance(target.storage, str):
        return True  # a backend object of the user's: not opened a second time here

    async def look() -> bool:
        storage = resolve_storage(target.storage)
        if storage is None:
            return False
        try:
            await storage.setup()
            return await storage.get_run(run_id) is not None
        finally:
            await storage.close()

    try:
        return run_sync(look())
    except Exception:  # the store itself is what failed: no resume hint
        return False


def _storage_url(given: str | None) -> str:
    return given or os.environ.get("PLAIT_STORAGE") or DEFAULT_STORAGE


def _storage_help() -> str:
    return "$PLAIT_STORAGE or " + DEFAULT_STORAGE


def _absolute_target(spec: str) -> str:
    module_part, _, attr = spec.rpartition(":")
    if module_part.endswith(".py"):
        return f"{Path(module_part).resolve()}:{attr}"
    return spec


def _runs(args: argparse.Namespace) -> int:
    from plait._sync import run_sync
    from plait.errors import PlaitError

    try:
        return run_sync(_runs_async(args))
    except PlaitError as exc:
        # an unreachable or misconfigured store: one line (naming the redacted URL), no traceback
        print("plait: " + " ".join(str(exc).split()), file=sys.stderr)  # a driver's message may wrap
        return 1


async def _runs_async(args: argparse.Namespace) -> int:
    from plait.storage import redact_url, resolve_storage

    status = None
    if args.runs_command == "list" and args.status is not None:
        from plait._io import RunStatus

        try:
            status = RunStatus(args.status).value
        except ValueError:
            print(
                f"plait: no status {args.status!r}; the statuses are: {', '.join(_statuses())}",
                file=sys.stderr,
            )
            return 2
    url = _storage_url(args.storage)
    storage = resolve_storage(url)
    assert storage is not None
    await storage.setup()
    try:
        if args.runs_command == "list":
            # user_id= only when asked: a third-party storage written before it need not take it
            filters = {"user_id": args.user_id} if args.user_id is not None else {}
            records = await storage.list_runs(limit=args.limit, status=status, **filters)
            if args.json:
                print(json.dumps([r.model_dump(mode="json") for r in records], indent=2))
            else:
                await _print_runs(records, redact_url(url), storage)
            return 0
        if args.runs_command == "diff":
            found = [await _find_run(storage, given, url) for given in (args.run_a, args.run_b)]
            for found_run in found:
                if isinstance(found_run, int):
                    return found_run
            args.run_a, args.run_b = (r.run_id for r in found)  # type: ignore[union-attr]
            return await _diff(args, storage)
        found_run = await _find_run(storage, args.run_id, url)
        if isinstance(found_run, int):
            return found_run
        record = found_run
        if args.runs_command == "cancel":
            from plait._runs import request_cancel

            cancelled = await request_cancel(storage, record.run_id)
            if args.json:
                print(json.dumps({"run_id": record.run_id, "cancelled": bool(cancelled)}))
            elif cancelled:
                print(f"cancel requested: run {short_id(record.run_id)} stops before its next step")
            else:
                print(
                    f"plait: run {short_id(record.run_id)} is not running (it is {record.status})",
                    file=sys.stderr,
                )
            return 0 if cancelled else 1
        if args.runs_command == "approve" and normalize_status(record.status) != "PAUSED":
            done = normalize_status(record.status) in ("COMPLETED", "COMPLETED_WITH_ERRORS")
            state = "already completed" if done else f"is {normalize_status(record.status)}, not paused"
            print(f"plait: run {short_id(record.run_id)} {state}: it waits for no answer", file=sys.stderr)
            return 1
        if args.runs_command == "show":
            checkpoints = await storage.load_checkpoints(record.run_id)
            if args.json:
                data = record.model_dump(mode="json")
                data["steps"] = [c.model_dump(mode="json") for c in checkpoints]
                print(json.dumps(data, indent=2))
            elif args.step:
                from rich.console import Console

                from plait._tree import step_detail

                try:
                    Console().print(step_detail(record, checkpoints, args.step))
                except LookupError as exc:
                    print(f"plait: {exc.args[0]}", file=sys.stderr)
                    return 1
            else:
                _print_run(record, checkpoints)
            return 0
    finally:
        await storage.close()
    if args.runs_command == "fork":
        return await _fork(args, record, url)
    if args.runs_command == "replay":
        return await _replay(args, record, url)
    return await _continue(args, record, url)


async def _find_run(storage: Any, given: str, url: str) -> Any:
    """The stored run whose id is ``given`` or starts with it (a unique prefix, like git), else
    the exit code after saying on stderr that there is none, or which runs the prefix fits."""
    from plait.storage import redact_url

    record = await storage.get_run(given)
    if record is not None:
        return record
    candidates = (
        [r for r in await storage.list_runs(limit=PREFIX_SCAN) if r.run_id.startswith(given)] if given else []
    )
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        shown = ", ".join(
            f"{r.run_id[: max(SHORT_ID, len(given) + 4)]} ({r.workflow_name}, {r.status})"
            for r in candidates[:5]
        )
        more = f" and {len(candidates) - 5} more" if len(candidates) > 5 else ""
        print(
            f"plait: {len(candidates)} runs start with {given!r}: {shown}{more}\n"
            "plait: give more characters of the run id",
            file=sys.stderr,
        )
        return 2
    print(
        f"plait: no run {given!r} in {redact_url(url)}"
        " (runs are searched in --storage, else $PLAIT_STORAGE, else " + DEFAULT_STORAGE + ")",
        file=sys.stderr,
    )
    return 1


def _stored_workflow(args: argparse.Namespace, record: Any, url: str) -> Any:
    """The workflow of a stored run (``--workflow``, else the one recorded with it), on the run's
    storage; None (said on stderr) when the run recorded none."""
    from plait.workflow import Workflow

    spec = args.workflow or record.target
    if not spec:
        print("plait: this run has no recorded workflow; pass --workflow MODULE:NAME", file=sys.stderr)
        return None
    workflow = load_target(spec)
    if not isinstance(workflow, Workflow):
        raise SystemExit(f"plait: {spec} is {type(workflow).__name__}, expected a Workflow")
    if workflow.storage is None or args.storage:
        workflow.storage = url
    workflow.target = record.target or _absolute_target(spec)
    return workflow


async def _continue(args: argparse.Namespace, record: Any, url: str) -> int:
    from plait.errors import PlaitError

    workflow = _stored_workflow(args, record, url)
    if workflow is None:
        return 2
    options: dict[str, Any] = {"wait": bool(getattr(args, "wait", False))}
    if args.runs_command == "approve":
        pending = (record.pause or {}).get("pending", [])
        step = args.step or (pending[0]["step_id"] if len(pending) == 1 else None)
        if step is None:
            ids = ", ".join(p["step_id"] for p in pending) or "none"
            print(f"plait: pass --step; the run waits at: {ids}", file=sys.stderr)
            return 2
        if args.answer is not None:
            try:
                value: Any = json.loads(args.answer)
            except json.JSONDecodeError:
                value = args.answer
        else:
            value = not args.reject
        options["answers"] = {step: value}
    try:
        output = await workflow.acontinue_run(record.run_id, **options)
    except (PlaitError, ValueError) as exc:
        print(f"plait: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(
            json.dumps(
                {"run_id": output.run_id, "status": str(output.status), "content": _jsonable(output.content)}
            )
        )
    else:
        from rich.console import Console

        from plait.console import approve_command, print_summary

        print_summary(Console(), workflow, output, markdown=False)
        command = approve_command(output.run_id, workflow.storage)
        for request in output.pending or []:
            print(f"waiting at {request.step_id}: {request.prompt}" + (f"  ({command})" if command else ""))
    return 0


def _replay_parser(runs_sub: Any) -> argparse.ArgumentParser:
    replay: argparse.ArgumentParser = runs_sub.add_parser(
        "replay",
        help="run a stored run again under the current code, answering its model and tool calls from its record",
    )
    replay.add_argument("run_id")
    replay.add_argument(
        "--live", action="store_true", help="send calls the record does not have to the model (default: stop)"
    )
    return replay


async def _replay(args: argparse.Namespace, record: Any, url: str) -> int:
    """``plait runs replay RUN_ID``: a new run (lineage replay_of) with zero live calls."""
    from plait.errors import PlaitError, ReplayDivergenceError

    workflow = _stored_workflow(args, record, url)
    if workflow is None:
        return 2
    try:
        output = await workflow.areplay(record.run_id, live=args.live)
    except ReplayDivergenceError as exc:
        print(f"plait: the replay diverged at step {exc.step_id!r}:\n{exc}", file=sys.stderr)
        return 1
    except (PlaitError, ValueError) as exc:
        print(f"plait: {exc}", file=sys.stderr)
        return 1
    finally:
        await workflow.aclose()
    differences = output.replay_differences or []
    if args.json:
        data = {
            "run_id": output.run_id,
            "replay_of": record.run_id,
            "status": str(output.status),
            "content": _jsonable(output.content),
            "differences": _jsonable(differences),
        }
        print(json.dumps(data))
        return 0
    print(f"replay of {short_id(record.run_id)}: run {short_id(output.run_id)}, {output.status}")
    print(f"content: {output.content}")
    if not differences:
        print("every step's output is the same as the original's")
    for difference in differences:
        print(f"differs at {difference['step_id']}: {difference['original']!r} -> {difference['replay']!r}")
    return 0


def _jsonable(value: Any) -> Any:
    from plait._durable import to_json

    return to_json(value, "the run's content")


async def _print_runs(records: list[Any], where: str, storage: Any) -> None:
    """``plait runs list``: short ids, readable at 80 columns (the id, status and times never
    wrap; the workflow's name does); a user column only when a run has a user."""
    from datetime import datetime

    from rich.console import Console
    from rich.table import Table

    users = any(r.user_id for r in records)
    table = Table(title=f"runs in {where}", title_justify="left")
    table.add_column("id", no_wrap=True)
    table.add_column("workflow", ratio=1, overflow="fold")
    if users:
        table.add_column("user", max_width=12, overflow="ellipsis")
    table.add_column("status", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("took", no_wrap=True, justify="right")
    table.add_column("tokens", no_wrap=True, justify="right")
    today = datetime.now().date()
    for r in records:
        created = datetime.fromtimestamp(r.created_at)
        started = created.strftime("%H:%M:%S" if created.date() == today else "%Y-%m-%d")
        duration = f"{r.metrics['duration']:.1f}s" if "duration" in (r.metrics or {}) else ""
        used = await _tokens(r, storage)
        name = r.workflow_name + (f"\n({_lineage_mark(r.lineage)})" if r.lineage else "")  # a fork, a replay
        row = [short_id(r.run_id), name, *([r.user_id or ""] if users else []), normalize_status(r.status)]
        table.add_row(*row, started, duration, "" if used is None else str(used))
    Console().print(table)


async def _tokens(record: Any, storage: Any) -> int | None:
    """The tokens a run used: its metrics once it finished; for a run that did not (paused,
    failed, cancelled, running), those of its checkpointed steps, as ``plait runs show`` counts."""
    metrics = record.metrics or {}
    total = metrics.get("input_tokens", 0) + metrics.get("output_tokens", 0)
    if total or normalize_status(record.status) in ("COMPLETED", "COMPLETED_WITH_ERRORS"):
        return total if metrics else None
    checkpoints = await storage.load_checkpoints(record.run_id)
    ids = {c.step_id for c in checkpoints}

    def outermost(step_id: str) -> bool:  # a container's metrics already hold its steps'
        while "/" in step_id:
            step_id = step_id.rpartition("/")[0]
            if step_id in ids:
                return False
        return True

    used = 0
    for checkpoint in checkpoints:
        if outermost(checkpoint.step_id):
            step_metrics = checkpoint.output.get("metrics") or {}
            used += step_metrics.get("input_tokens", 0) + step_metrics.get("output_tokens", 0)
    return used if used or metrics else None


def _print_run(record: Any, checkpoints: list[Any]) -> None:
    from rich.console import Console

    from plait._tree import record_tree

    Console().print(record_tree(record, checkpoints, color=_color, subtitle=_lineage_line(record)))


def _time_travel_parsers(runs_sub: Any) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """``plait runs fork`` and ``plait runs diff``."""
    fork = runs_sub.add_parser("fork", help="a new run from a stored one, changed at a step, live from there")
    fork.add_argument("run_id")
    fork.add_argument("--at", required=True, help="the step id to fork at (see `plait runs show RUN_ID`)")
    fork.add_argument("--state", default=None, help="session-state changes at the fork step, a JSON object")
    given = fork.add_mutually_exclusive_group()
    given.add_argument("--input", default=None, help="the fork step's new input (JSON, else text)")
    given.add_argument(
        "--output", default=None, help="the fork step's output instead of running it (JSON, else text)"
    )
    fork.add_argument("--replay", action="store_true", help="answer calls that still match from the record")
    diff = runs_sub.add_parser("diff", help="two stored runs step by step, and where they first diverge")
    diff.add_argument("run_a")
    diff.add_argument("run_b")
    diff.add_argument("--width", type=int, default=80, help="wrap the text at this many columns (default 80)")
    return fork, diff


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


async def _fork(args: argparse.Namespace, record: Any, url: str) -> int:
    from plait._fork import UNSET
    from plait.errors import PlaitError

    state = None
    if args.state is not None:
        try:
            state = json.loads(args.state)
        except json.JSONDecodeError as exc:
            print(
                f'plait: --state must be a JSON object, like \'{{"tone": "formal"}}\' ({exc})',
                file=sys.stderr,
            )
            return 2
        if not isinstance(state, dict):
            print(f"plait: --state must be a JSON object, got {args.state}", file=sys.stderr)
            return 2
    workflow = _stored_workflow(args, record, url)
    if workflow is None:
        return 2
    try:
        output = await workflow.afork(
            record.run_id,
            at=args.at,
            state=state,
            input=UNSET if args.input is None else _json_or_text(args.input),
            output=UNSET if args.output is None else _json_or_text(args.output),
            replay=args.replay,
        )
    except (PlaitError, ValueError) as exc:
        print(f"plait: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(
            json.dumps(
                {
                    "run_id": output.run_id,
                    "status": str(output.status),
                    "lineage": output.lineage,
                    "content": _jsonable(output.content),
                }
            )
        )
    else:
        from rich.console import Console

        from plait.console import print_summary

        print(f"fork {short_id(output.run_id)} of run {short_id(record.run_id)} at {args.at}")
        print_summary(Console(), workflow, output, markdown=False)
    return 0


async def _diff(args: argparse.Namespace, storage: Any) -> int:
    from plait._diff import adiff_runs
    from plait.errors import DefinitionError

    try:
        result = await adiff_runs(args.run_a, args.run_b, storage=storage)
    except DefinitionError as exc:
        print(f"plait: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        print(result.format(width=args.width))
    return 0


def _lineage_mark(lineage: dict[str, str] | None) -> str:
    """A run's origin in one short cell: ``fork of RUN@STEP``, ``replay of RUN``."""
    if not lineage:
        return ""
    if lineage.get("forked_from"):
        return f"fork of {lineage['forked_from'][:8]} at {lineage.get('fork_step', '')}"
    if lineage.get("replay_of"):
        return f"replay of {lineage['replay_of'][:8]}"
    return ", ".join(f"{k} {v}" for k, v in lineage.items())


def _lineage_line(record: Any) -> str:
    """``plait runs show``'s lineage: the original run (and fork step) of a fork or replay."""
    lineage = record.lineage
    if not lineage:
        return ""
    parts = []
    if lineage.get("replay_of"):
        parts.append(f"replay_of {lineage['replay_of']}")
    if lineage.get("forked_from"):
        parts.append(f"forked_from {lineage['forked_from']}")
    if lineage.get("fork_step"):
        parts.append(f"fork_step {lineage['fork_step']}")
    return "\n" + "  ".join(parts)


def _color(status: str) -> str:
    colors = {"COMPLETED": "green", "ok": "green", "PAUSED": "yellow", "skipped": "yellow"}
    return colors.get(normalize_status(status), "red")


if __name__ == "__main__":
    sys.exit(main())
