"""The model host: loads in the background, reports progress, fails with a plain sentence, and starts a
model process that died again."""

import time

import pytest

from backend.serving.host import MODEL_FAILED, ModelHost
from core.errors import GenerationError, ModelLoadError
from ui.status import status_markdown


def failing(message):
    def build(progress):
        progress("Loading weights of /srv/secret/models/gpt-oss", None)
        raise ModelLoadError(message)
    return build


def test_a_failed_load_tells_visitors_a_plain_sentence_and_the_operator_why(codec):
    host = ModelHost(failing("Could not load '/srv/secret/models/gpt-oss': out of memory"), codec, {})
    host.start(background=False)
    status = host.status()
    assert status.state == "failed" and status.error == MODEL_FAILED and "/srv/secret" in status.detail
    assert "/srv/secret" not in status_markdown(status)  # what a visitor sees
    assert "/srv/secret" in status_markdown(status, details=True)  # the one local user runs the server
    try:
        host.worker()
    except GenerationError as exc:
        assert "/srv/secret" not in exc.user_message and MODEL_FAILED in exc.user_message
    else:
        raise AssertionError("a failed host handed out a worker")


def test_an_unexpected_error_is_no_traceback_on_the_page(codec):
    def broken(progress):
        raise RuntimeError("CUDA driver /usr/lib/libcuda.so.1 exploded")

    host = ModelHost(broken, codec, {})
    host.start(background=False)
    assert host.status().error == MODEL_FAILED and "libcuda" in host.status().detail


def test_progress_then_ready(make_host):
    host = make_host()
    status = host.status()
    assert status.state == "ready" and status.description.model == "tiny-test"


def wait_for(condition, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _reaped(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"  # a zombie's state is Z
    except FileNotFoundError:
        return True


def test_a_model_process_that_dies_is_reaped_and_started_again(codec):
    """The kernel's OOM killer takes the model's process: the host notices, reaps it, says so (page,
    /healthz) and starts a new one; a process that keeps dying is marked failed instead."""
    from backend.engines.base import SamplingParams
    from backend.engines.process import ProcessEngine
    from backend.serving.host import KEEPS_DYING, MAX_RESTARTS
    from tests.support import child_engines

    engines = []

    def build(progress):
        engines.append(ProcessEngine(child_engines.dies_on_word, progress))
        return engines[-1]

    host = ModelHost(build, codec, {})
    restarts = []
    host.on_restart = lambda: restarts.append(1)
    host.start(background=False)
    try:
        stream = host.worker().engine.submit([1, 666], SamplingParams(max_new_tokens=5), [2])
        while stream.read(timeout=60) is not None:
            pass
        assert "being restarted" in stream.error
        wait_for(lambda: host.status().restarts == 1 and host.status().state == "ready")
        assert restarts == [1] and _reaped(engines[0]._proc.pid) and engines[1]._proc.pid != engines[0]._proc.pid
        ok = host.worker().engine.submit([1], SamplingParams(max_new_tokens=5), [2])
        assert ok.read(timeout=60) == [7, 8, 9]
        for n in range(MAX_RESTARTS):  # dying again and again: no endless loop of restarts
            wait_for(lambda: host.status().state in ("ready", "failed"))
            if host.status().state == "failed":
                break
            host.worker().engine.submit([666], SamplingParams(max_new_tokens=5), [2])
            wait_for(lambda: host.status().state != "ready" or host.status().restarts > n + 1)
        wait_for(lambda: host.status().state == "failed")
        assert host.status().error == KEEPS_DYING and all(_reaped(e._proc.pid) for e in engines)
    finally:
        host.close()


def test_the_banner_says_the_model_is_restarting():
    from backend.serving.host import HostStatus

    text = status_markdown(HostStatus("loading", "Loading weights", 0.5, restarts=1))
    assert "stopped unexpectedly; restarting" in text and "50%" in text


def test_the_app_recovers_from_a_killed_model_process_without_losing_the_answer(tmp_path, tiny_checkpoint, codec):
    """Kill -9 of the model's process mid-answer (the app's own process lives on): the partial answer
    is kept with the reason, /healthz says "restarting" and then "ready", the next chat is answered."""
    import os
    import signal
    from functools import partial

    import httpx
    import openai

    from backend.engines.process import ProcessEngine
    from core.config import Config
    from tests.conftest import free_port
    from tests.support import child_engines
    from tests.support.apps import running_app

    long = ("<|channel|>analysis<|message|>" + "Thinking it through. " * 600 + "<|end|><|start|>assistant"
            "<|channel|>final<|message|>Done.<|return|>")
    ids = codec.encoding.encode(long, allowed_special="all")
    engines = []

    def build(progress):
        engines.append(ProcessEngine(partial(child_engines.forced_tiny, str(tiny_checkpoint), ids), progress))
        return engines[-1]

    config = Config(data_dir=str(tmp_path), port=free_port(), max_new_tokens=4000, metrics_token="m" * 32)
    base = f"http://127.0.0.1:{config.port}"
    with running_app(config, build) as parts:
        assert parts.host.status().state == "ready"
        client = openai.OpenAI(base_url=base + "/v1", api_key="EMPTY", max_retries=0, timeout=300)
        stream = client.chat.completions.create(model="", stream=True, store=True,
                                                messages=[{"role": "user", "content": "think long"}])
        received = 0
        with pytest.raises(openai.APIError, match="being restarted"):
            for chunk in stream:
                received += 1
                if received == 20:
                    os.kill(engines[0]._proc.pid, signal.SIGKILL)
        health = httpx.get(base + "/healthz").json()
        assert health["restarts"] == 1 and health["model"] in ("restarting", "ready")
        wait_for(lambda: httpx.get(base + "/healthz").json()["model"] == "ready", timeout=300)
        assert _reaped(engines[0]._proc.pid)
        [conv] = parts.conversations.list("local")
        answer = parts.conversations.open("local", conv.id).messages[1]
        assert answer.status == "error" and answer.reasoning.startswith("Thinking it through.")
        metrics = httpx.get(base + "/metrics", headers={"Authorization": "Bearer " + "m" * 32}).text
        assert "gpt_oss_chat_model_restarts_total 1.0" in metrics
        again = client.chat.completions.create(model="", messages=[{"role": "user", "content": "again"}])
        assert again.choices[0].message.content == "Done."
