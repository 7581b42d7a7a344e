"""Options of ``plait run`` that plugins add (``register_run_options``): ``--otlp`` comes
from plait-otlp, and without plait-otlp asking for it says what to install."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import plait_otlp._configure
import plait_otlp.plugin
from plait.cli import main
from plait.errors import PluginError
from plait.hookspecs import hookimpl
from plait.testing import plugin_registry

TARGET = f"{Path(__file__).resolve().parents[2] / 'examples' / 'research_and_write.py'}:outer_workflow"


def test_otlp_option_comes_from_plait_otlp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoints: list[str | None] = []
    monkeypatch.setattr(plait_otlp._configure, "configure", lambda endpoint=None: endpoints.append(endpoint))
    monkeypatch.chdir(tmp_path)  # `plait run` stores runs in ./.plait
    with plugin_registry(plait_otlp.plugin) as registry:
        assert registry.entries("run_option")["otlp"].plugin == "plait_otlp.plugin"
        with pytest.raises(SystemExit):
            main(["run", "--help"])
        assert "--otlp [ENDPOINT]" in capsys.readouterr().out
        assert main(["run", TARGET, "history of AI", "--json", "--otlp", "http://127.0.0.1:4318"]) == 0
        assert main(["run", TARGET, "history of AI", "--json", "--otlp"]) == 0  # $OTEL_EXPORTER_OTLP_ENDPOINT
        assert main(["run", TARGET, "history of AI", "--json"]) == 0  # not given: not configured
    assert endpoints == ["http://127.0.0.1:4318", None]
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[-1]["event"] == "WorkflowCompleted"


def test_otlp_option_without_plait_otlp_says_what_to_install() -> None:
    with plugin_registry():  # the built-ins only: plait-otlp is not there
        for argv in (["run", TARGET, "x", "--otlp"], ["run", TARGET, "--otlp=http://127.0.0.1:4318"]):
            with pytest.raises(SystemExit) as raised:
                main(argv)
            assert (
                str(raised.value) == "plait: --otlp comes from the plait-otlp plugin: pip install plait-otlp"
            )


def test_a_run_option_is_checked_when_registered() -> None:
    class Broken:
        @hookimpl
        def register_run_options(self, register):  # type: ignore[no-untyped-def]
            register("bad name", print, print)

    with pytest.raises(PluginError, match="run option name must be"), plugin_registry(Broken()):
        pass
