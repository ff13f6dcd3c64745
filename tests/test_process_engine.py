"""The model in its own process: the same ids as in the app's process, cancel, load errors, a crash."""

from functools import partial

import pytest

from backend.engines.base import SamplingParams
from backend.engines.process import DIED, ProcessEngine
from backend.harmony.codec import PromptMessage, PromptSettings
from backend.serving.worker import ChatRequest, Worker
from core.errors import GenerationError, ModelLoadError
from core.events import Answer, Done, Reasoning, StopReason
from tests.conftest import FORCED_CHAT
from tests.support import child_engines


def read_all(stream, timeout=60):
    ids = []
    while (chunk := stream.read(timeout=timeout)) is not None:
        ids += chunk
    return ids


@pytest.fixture(scope="module")
def engine(tiny_checkpoint, codec):
    ids = codec.encoding.encode(FORCED_CHAT, allowed_special="all")
    stages = []
    engine = ProcessEngine(partial(child_engines.forced_tiny, str(tiny_checkpoint), ids),
                           lambda stage, fraction: stages.append(stage))
    assert stages == ["Loading weights of tiny"]  # progress crosses from the child
    assert engine.description.model == "tiny-test (own process)" and "pid" in engine.description.process
    yield engine
    engine.close()


def test_a_turn_through_the_worker_is_the_forced_answer(engine, codec):
    worker = Worker(engine, codec)
    events = list(worker.submit(ChatRequest([PromptMessage("user", "hi")], PromptSettings(), 1.0, 400)).events())
    done = events[-1]
    assert isinstance(done, Done) and done.stop_reason == "return"
    assert "".join(e.text for e in events if isinstance(e, Answer)) == "Hello! <b>How</b> can I help?"
    assert "".join(e.text for e in events if isinstance(e, Reasoning)).startswith("The user says hi.")


def test_cancel_ends_the_stream_and_the_next_request_still_runs(engine, codec):
    prompt = codec.render([PromptMessage("user", "hi")], PromptSettings())
    stream = engine.submit(prompt, SamplingParams(max_new_tokens=400), codec.stop_ids)
    assert stream.read(timeout=60)
    stream.cancel()
    read_all(stream)
    assert stream.finish_reason == StopReason.STOPPED
    again = engine.submit(prompt, SamplingParams(max_new_tokens=400), codec.stop_ids)
    assert codec.return_id in read_all(again) and again.finish_reason == StopReason.STOP_ID


def test_a_model_that_fails_to_load_says_why():
    stages = []
    with pytest.raises(ModelLoadError, match="weights folder is empty"):
        ProcessEngine(child_engines.failing, lambda stage, fraction: stages.append((stage, fraction)))
    assert stages == [("Loading weights", 0.5)]


def test_a_crashed_model_process_ends_open_streams_and_refuses_new_ones():
    engine = ProcessEngine(child_engines.dies_when_asked, lambda stage, fraction: None)
    stream = engine.submit([1], SamplingParams(max_new_tokens=10), [2])
    read_all(stream)
    assert (stream.finish_reason, stream.error) == (StopReason.ERROR, DIED)
    with pytest.raises(GenerationError, match="stopped unexpectedly"):
        engine.submit([1], SamplingParams(max_new_tokens=10), [2])
    engine.close()


def test_the_childs_batching_restarts_reach_the_parent():
    engine = ProcessEngine(child_engines.restarted_twice, lambda stage, fraction: None)
    try:
        assert read_all(engine.submit([1], SamplingParams(max_new_tokens=4), [2])) == [7]
        assert engine.manager_restarts == 2
    finally:
        engine.close()
