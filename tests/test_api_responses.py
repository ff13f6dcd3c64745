"""/v1/responses through the official `openai` client against the launched app (the forced tiny model
behind the same worker, turn pipeline and harmony parsing as the page)."""

import json

import httpx
import pytest

from tests.support.api import AFTER, CALL, api_app, api_client

openai = pytest.importorskip("openai")

WEATHER = [{"type": "function", "name": "get_weather", "description": "Weather now",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]


def make_app(launched, tmp_path, text=None, then=(), **settings):
    return api_app(launched, tmp_path, text, then, **settings)

def client(base: str, key: str = "EMPTY"):
    return api_client(base, key)

def test_a_whole_response_with_reasoning_apart_and_usage(launched, tmp_path):
    parts, _, base = make_app(launched, tmp_path)
    r = client(base).responses.create(model="tiny-test", input="hi", instructions="Be brief.",
                                      reasoning={"effort": "high"})
    assert r.status == "completed" and r.output_text == "Hello! <b>How</b> can I help?"
    reasoning, message = r.output
    assert reasoning.type == "reasoning" and "Let me think" in reasoning.content[0].text
    assert message.type == "message" and "Let me think" not in message.content[0].text
    assert r.usage.output_tokens > r.usage.output_tokens_details.reasoning_tokens > 50 and r.usage.input_tokens > 10
    assert r.reasoning.effort == "high" and r.instructions == "Be brief."
    entries = [e for e in parts.oversight.audit.store.entries() if e.action == "api_request"]
    assert [e.effort for e in entries] == ["high"]
    [conv] = parts.conversations.list("local")  # stored by default, as OpenAI's Responses API does
    assert [m.role for m in parts.conversations.open("local", conv.id).messages] == ["user", "assistant"]


def test_the_event_sequence_of_a_streamed_response(launched, tmp_path):
    _, _, base = make_app(launched, tmp_path)
    events = list(client(base).responses.create(model="tiny-test", input=[{"role": "user", "content": "hi"}],
                                                stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    reasoning = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert "Let me think" in reasoning and text == "Hello! <b>How</b> can I help?"
    added = [e.item.type for e in events if e.type == "response.output_item.added"]
    done = [e.item.type for e in events if e.type == "response.output_item.done"]
    assert added == done == ["reasoning", "message"]
    assert kinds.index("response.output_text.done") < kinds.index("response.completed")
    final = events[-1].response
    assert final.output_text == text and final.usage.output_tokens_details.reasoning_tokens > 0


def test_a_function_round_trip_by_previous_response_id_survives_a_restart(launched, tmp_path):
    parts, config, base = make_app(launched, tmp_path, CALL, then=(AFTER,))
    c = client(base)
    first = c.responses.create(model="tiny-test", input="Weather in Paris?", tools=WEATHER)
    [reasoning, call] = first.output
    assert call.type == "function_call" and call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    assert first.status == "completed" and "Ask the function" in reasoning.content[0].text
    parts.demo.close()  # the app restarts on the same database: the response is still there
    parts.host.close()
    parts, _, base = make_app(launched, tmp_path, AFTER)
    c = client(base)
    assert c.responses.retrieve(first.id).output[1].call_id == call.call_id
    second = c.responses.create(model="tiny-test", previous_response_id=first.id, tools=WEATHER,
                                input=[{"type": "function_call_output", "call_id": call.call_id,
                                        "output": '{"sky": "sunny"}'}])
    assert second.output_text == "Sunny in Paris." and second.previous_response_id == first.id
    [conv] = parts.conversations.list("local")  # one conversation: the call, its result and the answer
    messages = parts.service.repo.get("local", conv.id).messages
    assert [m.role for m in messages] == ["user", "assistant"]
    answer = messages[1]
    assert [(h["role"], h.get("recipient")) for h in answer.harmony] == [
        ("assistant", None), ("assistant", "functions.get_weather"), ("tool", "assistant"), ("assistant", None),
        ("assistant", None)]
    assert answer.content == "Sunny in Paris." and answer.status == "complete"
    assert [s.kind for s in answer.trace][-3:] == ["tool_call", "tool_result", "reasoning"]
    c.responses.delete(second.id)
    with pytest.raises(openai.NotFoundError, match="no stored response"):
        c.responses.retrieve(second.id)


def test_responses_are_their_owners_only(launched, tmp_path):
    from backend.identity.users import add_user
    from storage.api_keys import ApiKeys

    for name in ("alice", "bob"):
        add_user(tmp_path / "users.json", name, name + "-password", iterations=1000)
    parts, _, base = make_app(launched, tmp_path)
    keys = ApiKeys(parts.service.repo)
    alice, bob = client(base, keys.create("alice")[0]), client(base, keys.create("bob")[0])
    r = alice.responses.create(model="tiny-test", input="hi")
    with pytest.raises(openai.NotFoundError):
        bob.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        bob.responses.create(model="tiny-test", input="and?", previous_response_id=r.id)
    with pytest.raises(openai.NotFoundError):
        bob.responses.delete(r.id)
    assert alice.responses.retrieve(r.id).output_text == r.output_text
    assert parts.conversations.list("bob") == []


def test_a_stateless_client_carries_the_reasoning_back(launched, tmp_path):
    """store false + include reasoning.encrypted_content: the reasoning of a turn that ended in a call
    goes back into harmony's prompt with the function's result (harmony keeps it through a tool loop)."""
    parts, _, base = make_app(launched, tmp_path, CALL, then=(AFTER,))
    c = client(base)
    first = c.responses.create(model="tiny-test", input="Weather in Paris?", tools=WEATHER, store=False,
                               include=["reasoning.encrypted_content"])
    reasoning, call = first.output
    assert reasoning.encrypted_content
    with pytest.raises(openai.NotFoundError):
        c.responses.retrieve(first.id)  # not stored
    items = [{"role": "user", "content": "Weather in Paris?"}, reasoning.model_dump(exclude_none=True),
             call.model_dump(exclude_none=True),
             {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}]
    items[1].pop("content")  # only the blob carries it now
    prompts = []
    worker = parts.host.worker()
    original = worker.submit
    worker.submit = lambda request: prompts.append(request) or original(request)
    second = c.responses.create(model="tiny-test", input=items, tools=WEATHER, store=False)
    assert second.output_text == "Sunny in Paris."
    [turn] = [t for t in prompts[0].turns if t.role == "assistant"]
    assert [m.get("channel") for m in turn.harmony] == ["analysis", "commentary", "commentary"]
    assert turn.harmony[0]["content"][0]["text"] == "Ask the function."
    assert parts.conversations.list("local") == []


def test_refused_and_unknown_parameters_name_themselves(launched, tmp_path):
    _, _, base = make_app(launched, tmp_path)
    c = client(base)
    with pytest.raises(openai.BadRequestError, match="text.format"):
        c.responses.create(model="tiny-test", input="hi", text={"format": {"type": "xml"}})
    with pytest.raises(openai.BadRequestError, match="`background`"):
        c.responses.create(model="tiny-test", input="hi", background=True)
    with pytest.raises(openai.BadRequestError, match="Unknown parameter.*colour"):
        c.responses.create(model="tiny-test", input="hi", extra_body={"colour": "blue"})
    with pytest.raises(openai.BadRequestError, match="function_call_output must answer"):
        c.responses.create(model="tiny-test", input=[{"type": "function_call_output", "call_id": "x", "output": "1"}])
    with pytest.raises(openai.NotFoundError):
        c.responses.create(model="tiny-test", input="hi", previous_response_id="resp_" + "0" * 48)
    r = httpx.post(base + "/v1/responses", json={"model": "tiny-test", "input": "hi", "stream": "false"}, timeout=30)
    assert r.status_code == 400 and "`stream` must be true or false" in r.json()["error"]["message"]


def test_a_call_into_a_namespace_comes_back_with_its_namespace(launched, tmp_path):
    lookup = ("<|channel|>analysis<|message|>Look them up.<|end|><|start|>assistant to=crm.lookup<|channel|>commentary "
              "<|constrain|>json<|message|>{\"q\": \"Ada\"}<|call|>")
    _, _, base = make_app(launched, tmp_path, lookup, then=(AFTER,))
    c = client(base)
    crm = {"type": "namespace", "name": "crm", "description": "The CRM.", "tools": [
        {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}]}
    first = c.responses.create(model="tiny-test", input="Who is Ada?", tools=[crm])
    call = first.output[-1]
    assert (call.type, call.namespace, call.name, call.arguments) == ("function_call", "crm", "lookup", '{"q": "Ada"}')
    second = c.responses.create(model="tiny-test", previous_response_id=first.id, tools=[crm],
                                input=[{"type": "function_call_output", "call_id": call.call_id, "output": "a customer"}])
    assert second.output_text == "Sunny in Paris."
