"""Which tools a deployment offers (and why not), and how one call is resolved and run."""

import threading

import pytest

from backend.tools.setup import build_toolbox, wanted_tools
from backend.tools.toolbox import BUILT_IN_FUNCTIONS, MAX_RESULT_CHARS, FunctionTool, Toolbox, ToolContext
from core.config import Config

CTX = ToolContext(threading.Event(), deadline=float("inf"))


def test_auto_offers_what_works_and_says_why_not_the_rest(tmp_path):
    box = build_toolbox(Config(data_dir=str(tmp_path)))
    assert box.names == ["python", "calculate", "current_time"]
    assert "--browser-docs" in box.unavailable["browser"]


def test_python_is_off_for_several_users_unless_the_deployment_names_it(tmp_path):
    box = build_toolbox(Config(data_dir=str(tmp_path)), several_users=True)
    assert "python" not in box.names and "several users" in box.unavailable["python"]
    box = build_toolbox(Config(data_dir=str(tmp_path), tools="python,calculate"), several_users=True)
    assert box.names == ["python", "calculate"]


def test_the_browser_searches_a_docs_folder(tmp_path, repo):
    from storage.documents import Documents

    (tmp_path / "a.md").write_text("# A\nalpha")
    box = build_toolbox(Config(data_dir=str(tmp_path), tools="browser", browser_docs=str(tmp_path)), Documents(repo))
    assert box.names == ["browser"] and Documents(repo).count() == 1


def test_tools_flag():
    assert wanted_tools("none") == ([], True) and wanted_tools("calculate, python") == (["calculate", "python"], True)
    with pytest.raises(ValueError, match="unknown tool"):
        wanted_tools("python,shell")


def test_calls_are_resolved_by_harmony_recipient():
    box = Toolbox({name: FunctionTool(*BUILT_IN_FUNCTIONS[name]) for name in ("calculate", "current_time")})
    session = box.session(["calculate"])
    assert session.run("functions.calculate", '{"expression": "6*7"}', CTX).text == "42"
    for recipient in ("functions.current_time", "calculate", "python", "browser.search"):
        result = session.run(recipient, "{}", CTX)  # not ticked, or not how a function is addressed
        assert result.status == "error" and "there is no tool" in result.text and "functions.calculate" in result.text


def test_the_model_reads_functions_in_the_developer_message_and_built_ins_in_the_system_message():
    box = build_toolbox(Config(tools="calculate"))
    told = box.prompt(["calculate"])
    assert told.system == told.developer == [] and [f["name"] for f in told.functions] == ["calculate"]


def test_a_huge_result_is_cut_for_the_model():
    class Loud:
        name = "loud"

        def namespace(self):
            return {"name": "loud", "tools": []}

        def run(self, method, arguments, ctx):
            from backend.tools.toolbox import ToolOutput
            return ToolOutput("x" * (MAX_RESULT_CHARS * 3))

    result = Toolbox({"python": Loud()}).session(["python"]).run("python", "", CTX)
    assert len(result.text) < MAX_RESULT_CHARS + 100 and result.text.endswith("characters in all]")


def test_a_tool_that_crashes_is_an_error_result():
    class Broken(FunctionTool):
        def run(self, method, arguments, ctx):
            raise RuntimeError("boom")

    box = Toolbox({"calculate": Broken(*BUILT_IN_FUNCTIONS["calculate"])})
    result = box.session(["calculate"]).run("functions.calculate", "{}", CTX)
    assert result.status == "error" and "boom" in result.text
