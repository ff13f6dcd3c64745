"""tools and tool_choice, in both APIs' forms: offered, not offered, required, named, allowed_tools."""

import pytest

from backend.api.functions import client_tools
from core.errors import InputError

PARAMS = {"type": "object", "properties": {"city": {"type": "string"}}}
CHAT_TOOLS = [{"type": "function", "function": {"name": n, "parameters": PARAMS}} for n in ("weather", "time")]
FLAT_TOOLS = [{"type": "function", "name": n, "parameters": PARAMS} for n in ("weather", "time")]


@pytest.mark.parametrize("tools,flat", [(CHAT_TOOLS, False), (FLAT_TOOLS, True)])
def test_the_four_choices(tools, flat):
    assert client_tools(tools, None, flat=flat).names == {"weather", "time"}
    assert client_tools(tools, "auto", flat=flat).call is None
    none = client_tools(tools, "none", flat=flat)
    assert none.functions == [] and none.call is None  # not offered: the model cannot call one
    assert client_tools(tools, "required", flat=flat).call == ""
    named = {"type": "function", "name": "time"} if flat else {"type": "function", "function": {"name": "time"}}
    assert client_tools(tools, named, flat=flat).call == "time"
    with pytest.raises(InputError, match="'nope', which is not one of the request's tools"):
        client_tools(tools, {**named, **({"name": "nope"} if flat else {"function": {"name": "nope"}})}, flat=flat)


def test_allowed_tools_offer_only_those():
    chat = {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [
        {"type": "function", "function": {"name": "time"}}]}}
    chosen = client_tools(CHAT_TOOLS, chat)
    assert chosen.names == {"time"} and chosen.call == ""
    flat = {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "weather"}]}
    assert client_tools(FLAT_TOOLS, flat, flat=True).names == {"weather"}


def test_what_cannot_be_honoured_is_refused():
    with pytest.raises(InputError, match="offers no functions"):
        client_tools([], "required")
    with pytest.raises(InputError, match="Only function tools"):
        client_tools([{"type": "code_interpreter"}], None, flat=True)
    with pytest.raises(InputError, match="tool_choice must be"):
        client_tools(CHAT_TOOLS, "sometimes")


def test_namespace_tools_are_harmony_namespaces_and_server_side_tools_are_refused():
    from backend.tools.user_functions import offered_recipients

    crm = {"type": "namespace", "name": "crm", "description": "The CRM.", "tools": FLAT_TOOLS}
    chosen = client_tools([crm, FLAT_TOOLS[0]], None, flat=True)
    assert [ns["name"] for ns in chosen.namespaces] == ["crm"] and chosen.names == {"weather"}
    assert offered_recipients([f["function"] for f in chosen.functions], chosen.namespaces) == {
        "functions.weather", "crm.weather", "crm.time"}
    with pytest.raises(InputError, match="not one of functions"):
        client_tools([{**crm, "name": "functions"}], None, flat=True)
    with pytest.raises(InputError, match="web_search is OpenAI's own tool"):
        client_tools([{"type": "web_search"}], None, flat=True)
