"""The audit log, per-user limits and metrics, through real requests to the launched app (page
through gradio_client, API through the openai client), and the export command line."""

import datetime as dt
import json

import httpx
import pytest
from gradio_client import Client

from backend.observability.audit import Audit
from backend.observability.audit import main as audit_cli
from core.config import Config
from storage.audit import AuditStore
from storage.schema import utcnow
from testkit.net import free_port

openai = pytest.importorskip("openai")


def start(launched, tmp_path, **settings):
    config = Config(data_dir=str(tmp_path), port=free_port(), max_new_tokens=400, max_active=4, max_waiting=4,
                    **settings)
    parts = launched(config)
    return parts, f"http://127.0.0.1:{config.port}"


def send(url: str, text: str, cid: str = ""):
    return Client(url + "/", verbose=False).submit(text, cid, "low", "", 1.0, 400, api_name="/send").result()


def actions(parts) -> list[str]:
    return [e.action for e in parts.oversight.audit.store.entries()]


def test_page_actions_are_logged_without_text_and_exported_as_jsonl(launched, tmp_path, capsys):
    parts, url = start(launched, tmp_path)
    _, _, cid = send(url, "a secret plan")
    link = parts.sharing.create("local", cid, "1 day", False)
    parts.sharing.open(link.token)
    parts.conversations.export("local", cid, "markdown")
    parts.sharing.revoke("local", link.token)
    parts.conversations.delete("local", cid)
    assert actions(parts)[:2] == ["policy", "send"] and {"answer", "share_create", "share_open", "export", "share_revoke",
                                                "delete"} <= set(actions(parts))
    store = parts.oversight.audit.store
    answer = next(e for e in store.entries() if e.action == "answer")
    assert answer.conversation_id == cid and answer.effort == "low" and answer.outcome == "return"
    assert answer.prompt_tokens > 10 and answer.completion_tokens > 50
    assert "a secret plan" not in json.dumps([e.to_dict() for e in store.entries()])
    audit_cli(["export", "--data-dir", str(tmp_path), "--since", (utcnow() - dt.timedelta(hours=1)).isoformat()])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [x["action"] for x in lines] == actions(parts) and lines[1]["owner"] == "local"
    audit_cli(["export", "--data-dir", str(tmp_path), "--since", (utcnow() + dt.timedelta(hours=1)).isoformat()])
    assert capsys.readouterr().out == ""


def test_content_only_when_asked_and_retention_removes_old_entries(repo):
    store = AuditStore(repo)
    store.append("bob", "send", at=utcnow() - dt.timedelta(days=40))
    Audit(store, content=True, retention_days=30).record("bob", "send", text="keep this")
    Audit(store).record("bob", "send", text="not this")
    entries = store.entries()
    assert [e.detail.get("text") for e in entries] == ["keep this", None]  # the 40-day-old one is gone


def test_retention_runs_at_start_and_hourly_whatever_the_uptime(repo):
    store, clock = AuditStore(repo), [60.0]  # a machine booted one minute ago: monotonic() is small
    audit = Audit(store, retention_days=30, clock=lambda: clock[0])
    store.append("bob", "send", at=utcnow() - dt.timedelta(days=40))
    audit.policy("raw")  # what the app does at start
    assert [e.action for e in store.entries()] == ["policy"]  # pruned at once, not an hour after boot
    store.append("bob", "send", at=utcnow() - dt.timedelta(days=41))
    clock[0] += 600
    audit.record("bob", "send")
    assert len(store.entries()) == 3  # within the hour: not again
    clock[0] += 3600
    audit.record("bob", "send")
    assert [e.action for e in store.entries()] == ["policy", "send", "send"]  # the hourly prune


def test_a_policy_change_between_starts_is_logged_once(repo):
    audit = Audit(AuditStore(repo))
    audit.policy("raw")
    audit.policy("raw")
    audit.policy("hidden")
    entries = [e for e in audit.store.entries() if e.action == "policy"]
    assert [(e.detail["reasoning_display"], e.detail.get("previous")) for e in entries] == [("raw", None),
                                                                                           ("hidden", "raw")]


def test_messages_per_minute_for_page_and_api_alike(launched, tmp_path):
    parts, url = start(launched, tmp_path, limit_messages_per_minute=2)
    send(url, "one")
    client = openai.OpenAI(base_url=url + "/v1", api_key="EMPTY", max_retries=0)
    client.chat.completions.create(model="tiny-test", messages=[{"role": "user", "content": "two"}])
    with pytest.raises(openai.RateLimitError, match="2 messages in the last minute") as refused:
        client.chat.completions.create(model="tiny-test", messages=[{"role": "user", "content": "three"}])
    assert 1 <= int(refused.value.response.headers["Retry-After"]) <= 60
    with pytest.raises(Exception, match="Try again in"):
        send(url, "four")
    assert parts.conversations.titles("local")[0][1] == "one"  # the refused message was never sent
    assert actions(parts).count("limit") == 2


def test_tokens_per_day(repo):
    from backend.observability.limits import Limits
    from core.errors import LimitError

    store = AuditStore(repo)
    limits = Limits(store, tokens_per_day=1000)
    store.append("carol", "answer", prompt_tokens=600, completion_tokens=300, at=utcnow() - dt.timedelta(hours=20))
    limits.check("carol")  # 900 of 1000
    store.append("carol", "answer", prompt_tokens=50, completion_tokens=60)
    with pytest.raises(LimitError, match="1,010 tokens in the last 24 hours") as refused:
        limits.check("carol")
    assert 3.5 * 3600 < refused.value.retry_after_s < 4.5 * 3600  # when the 20-hour-old answer leaves the day
    limits.check("dave")  # per user


def test_metrics_through_real_requests_behind_a_token(launched, tmp_path):
    parts, url = start(launched, tmp_path, metrics_token="scrape-me")
    send(url, "hello")
    openai.OpenAI(base_url=url + "/v1", api_key="EMPTY").chat.completions.create(
        model="tiny-test", reasoning_effort="high", messages=[{"role": "user", "content": "hi"}])
    assert httpx.get(url + "/metrics").status_code == 401
    assert httpx.get(url + "/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(url + "/metrics", headers={"Authorization": "Basic scrape-me"}).status_code == 401
    body = httpx.get(url + "/metrics", headers={"Authorization": "Bearer scrape-me"}).text
    assert 'gpt_oss_chat_requests_total{effort="low",outcome="return",via="page"} 1.0' in body
    assert 'gpt_oss_chat_requests_total{effort="high",outcome="return",via="api"} 1.0' in body
    assert "gpt_oss_chat_ttft_seconds_count 2.0" in body and "gpt_oss_chat_queue_depth 0.0" in body
    page_updates = next(line for line in body.splitlines() if line.startswith("gpt_oss_chat_page_updates_total"))
    assert float(page_updates.split()[-1]) >= 2


def test_metrics_are_off_unless_asked(launched, tmp_path):
    _, url = start(launched, tmp_path)
    assert httpx.get(url + "/metrics").status_code != 200


def test_sign_in_failures_are_logged_and_counted(launched, tmp_path):
    from backend.identity.users import add_user

    add_user(tmp_path / "users.json", "alice", "alice-password", iterations=1000)
    parts, url = start(launched, tmp_path)
    assert httpx.post(url + "/login", data={"username": "alice", "password": "wrong"}).status_code == 400
    assert httpx.post(url + "/login", data={"username": "alice", "password": "alice-password"}).status_code == 200
    entries = [(e.owner, e.outcome) for e in parts.oversight.audit.store.entries() if e.action == "sign_in"]
    assert entries == [("alice", "failed"), ("alice", "ok")]
    assert parts.oversight.metrics.sign_in_failures._value.get() == 1


CALC = ("<|channel|>analysis<|message|>Use calculate.<|end|><|start|>assistant to=functions.calculate"
        '<|channel|>commentary <|constrain|>json<|message|>{"expression": "17 + 25"}<|call|>')
CALC_DONE = "<|channel|>analysis<|message|>It said 42.<|end|><|start|>assistant<|channel|>final<|message|>42.<|return|>"
LONG = "<|channel|>analysis<|message|>" + "more " * 400 + "<|end|><|start|>assistant<|channel|>final<|message|>x<|return|>"


def test_tool_calls_regenerate_and_stop_are_logged_and_counted(launched, tmp_path):
    import time

    from backend.services.options import ChatOptions

    config = Config(data_dir=str(tmp_path), port=free_port(), max_new_tokens=600, tools="calculate",
                    metrics_token="t")
    parts = launched(config, CALC, then=(CALC_DONE, LONG))
    url = f"http://127.0.0.1:{config.port}"
    chat, _, cid = Client(url + "/", verbose=False).submit("17 + 25?", "", "low", "", 1.0, 600, ["calculate"], "",
                                                           api_name="/send").result()
    assert "42." in json.dumps(chat)
    store = parts.oversight.audit.store
    [call] = [e for e in store.entries() if e.action == "tool_call"]
    assert call.detail["tool"] == "functions.calculate" and call.outcome == "ok" and call.conversation_id == cid
    turn = parts.service.regenerate("local", cid, ChatOptions(effort="high", tools=["calculate"]))
    next(iter(turn))
    time.sleep(0.5)
    assert parts.service.stop("local", cid)
    for _ in turn:
        pass
    assert ["regenerate", "stop"] == [a for a in actions(parts) if a in ("regenerate", "stop")]
    deadline = time.time() + 30
    while time.time() < deadline and len([e for e in store.entries() if e.action == "answer"]) < 2:
        time.sleep(0.1)
    answers = [e for e in store.entries() if e.action == "answer"]
    assert [a.outcome for a in answers] == ["return", "stopped"] and answers[1].effort == "high"
    body = httpx.get(url + "/metrics", headers={"Authorization": "Bearer t"}).text
    assert 'gpt_oss_chat_tool_calls_total{outcome="ok",tool="functions.calculate"} 1.0' in body
    assert 'gpt_oss_chat_requests_total{effort="high",outcome="stopped",via="page"} 1.0' in body


def test_a_full_worker_refuses_at_once_and_the_refusal_is_counted(launched, tmp_path):
    config = Config(data_dir=str(tmp_path), port=free_port(), max_new_tokens=600, max_active=1, max_waiting=0,
                    metrics_token="t")
    launched(config, LONG)
    url = f"http://127.0.0.1:{config.port}"
    client = openai.OpenAI(base_url=url + "/v1", api_key="EMPTY", max_retries=0)
    with client.chat.completions.create(model="tiny-test", messages=[{"role": "user", "content": "long"}],
                                        stream=True) as first:
        next(iter(first))
        with pytest.raises(openai.RateLimitError, match="busy") as refused:
            client.chat.completions.create(model="tiny-test", messages=[{"role": "user", "content": "too"}])
        assert refused.value.response.headers["Retry-After"] == "2"
        body = httpx.get(url + "/metrics", headers={"Authorization": "Bearer t"}).text
        assert "gpt_oss_chat_busy_refusals_total 1.0" in body and "gpt_oss_chat_active_requests 1.0" in body
