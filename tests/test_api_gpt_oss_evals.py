"""gpt-oss's own eval samplers (`gpt_oss.evals`: the Chat Completions and the Responses one) get answers
from the app, not "No response", on a hand-made example, with what they send: max_tokens 131,072 (cut to
what the window leaves) and reasoning effort. The package needs Python 3.12+, so they run in a venv of
their own (.ci/run makes it; GPT_OSS_EVALS_PYTHON names its python), as a subprocess against the app on
the forced tiny model."""

import os
import subprocess
import sys

import pytest

from tests.support.api import api_app

PYTHON = os.environ.get("GPT_OSS_EVALS_PYTHON")
SAMPLE = """
import sys
from gpt_oss.evals.chat_completions_sampler import ChatCompletionsSampler
from gpt_oss.evals.responses_sampler import ResponsesSampler

base = sys.argv[1]
asked = [{"role": "user", "content": "hi"}]
for sampler in (ChatCompletionsSampler(model="tiny-test", reasoning_model=True, reasoning_effort="low",
                                       max_tokens=131_072, temperature=1.0, base_url=base),
                ResponsesSampler(model="tiny-test", reasoning_model=True, reasoning_effort="low", base_url=base)):
    print(type(sampler).__name__, repr(sampler(list(asked)).response_text), flush=True)
"""


def test_the_gpt_oss_eval_samplers_get_answers(launched, tmp_path):
    if not PYTHON:
        pytest.skip("no gpt-oss eval samplers (.ci/run installs them where a Python 3.12+ is found; set "
                    "GPT_OSS_EVALS_PYTHON to a python with gpt-oss installed)")
    _, _, base = api_app(launched, tmp_path)
    done = subprocess.run([PYTHON, "-c", SAMPLE, base + "/v1"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OPENAI_API_KEY": "EMPTY"})
    sys.stdout.write(done.stdout + done.stderr[-2000:])
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and len(lines) == 2, done.stderr[-2000:]
    expected = repr("Hello! <b>How</b> can I help?")
    assert lines == [f"ChatCompletionsSampler {expected}", f"ResponsesSampler {expected}"]
