"""The bundled demo model: a real GptOss folder that speaks harmony, and the fallback to it."""

import json
import math

import pytest
import torch

from backend.demo import model as demo_model
from backend.engines.choose import choose_engine, default_model_blocker
from backend.engines.loader import load_model
from core.config import Config
from core.errors import ModelLoadError
from lab import train as demo_build
from lab.evaluate import FOLLOW_UP, NO_FUNCTION, NO_PYTHON, PARAPHRASED, demo_service, evaluate


@pytest.fixture(scope="session")
def demo_folder(tmp_path_factory, codec):
    return demo_model.ensure_built(tmp_path_factory.mktemp("demo") / "demo-model", codec, lambda s, f: None)


def test_folder_is_a_complete_model_like_the_real_one(demo_folder, codec):
    names = {p.name for p in demo_folder.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json"} <= names
    config = json.loads((demo_folder / "config.json").read_text())
    assert config["model_type"] == "gpt_oss" and config["vocab_size"] == 201088
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(demo_folder)
    text = "<|start|>user<|message|>What is 12 + 30? Ça va 🎉<|end|>"
    assert tok.encode(text, add_special_tokens=False) == codec.encoding.encode(text, allowed_special="all")


def test_chat_and_response_templates_match_harmony(demo_folder, codec):
    """What `transformers serve` renders and parses with the folder is what openai-harmony does."""
    from transformers import AutoTokenizer
    from transformers.utils.chat_parsing.response_parser import parse_response

    from backend.harmony.codec import PromptMessage, PromptSettings

    tok = AutoTokenizer.from_pretrained(demo_folder)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi <b>"},
                {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "again"}]
    for effort in ("low", "high"):
        ids = tok.apply_chat_template(messages, add_generation_prompt=True, reasoning_effort=effort,
                                      conversation_date="2026-01-02", tokenize=True, return_dict=False)
        turns = [PromptMessage("user", "hi <b>"), PromptMessage("assistant", "Hello"), PromptMessage("user", "again")]
        assert list(ids) == codec.render(turns, PromptSettings(effort=effort, instructions="Be brief.",
                                                               date="2026-01-02"))
    completion = ("<|channel|>analysis<|message|>Greet back.<|end|><|start|>assistant<|channel|>final"
                  "<|message|>Hi!<|return|>")
    parsed = parse_response(completion, tok.response_template, prefix="<|start|>assistant")
    assert (parsed["reasoning_content"], parsed["content"]) == ("Greet back.", "Hi!")


def expansion_mismatches(full, small, used: list[int]) -> list[str]:
    """What differs between the expanded model and the small one it came from (empty: exact).

    Compared where the expansion is exact, not through a float32 softmax over 201,088 ids, whose
    rounding moves with the library version: the used ids' logits (equal up to float32 dot-product
    rounding), the unused logits (exactly zero), and the two distributions in float64 log space.
    """
    ids = torch.tensor([used[10:40]])
    small_ids = torch.tensor([[used.index(t) for t in ids[0].tolist()]])
    with torch.no_grad():
        full_logits = full(input_ids=ids).logits[0, -1].double()
        small_logits = small(input_ids=small_ids).logits[0, -1].double()
    unused = torch.ones(full_logits.shape[0], dtype=torch.bool)
    unused[used] = False
    others = math.log(201088 - len(used))  # the small model's fixed logit for all unused ids
    log_full = full_logits.log_softmax(-1)
    log_small = torch.cat([small_logits, torch.tensor([others], dtype=torch.float64)]).log_softmax(-1)
    problems = []
    if not torch.allclose(full_logits[used], small_logits, rtol=0, atol=1e-5):
        problems.append(f"used logits differ by {(full_logits[used] - small_logits).abs().max():.3g}")
    if torch.count_nonzero(full_logits[unused]):
        problems.append(f"{torch.count_nonzero(full_logits[unused])} unused logits are not zero")
    if not torch.allclose(log_full[used], log_small[:-1], rtol=0, atol=1e-5):
        problems.append(f"used log-probabilities differ by {(log_full[used] - log_small[:-1]).abs().max():.3g}")
    if not math.isclose(log_full[unused].logsumexp(-1).item(), log_small[-1].item(), abs_tol=1e-5):
        problems.append("the unused ids together weigh differently")
    return problems


def test_expansion_keeps_the_distribution_exactly(demo_folder, codec):
    small, used, _ = demo_model.load_artifact(codec)
    assert expansion_mismatches(load_model(str(demo_folder)).model, small, used) == []


@pytest.mark.parametrize("row", ["used", "unused"])
def test_the_exactness_check_catches_a_wrong_expansion(demo_folder, codec, row):
    small, used, _ = demo_model.load_artifact(codec)
    full = load_model(str(demo_folder)).model
    unused_id = next(i for i in range(201088) if i not in set(used))
    with torch.no_grad():  # one output row off by a little, as a wrong copy would be
        full.lm_head.weight[used[5] if row == "used" else unused_id] += 0.01
    assert expansion_mismatches(full, small, used)


@pytest.fixture(scope="module")
def demo_chat(demo_folder, codec, tmp_path_factory):
    service, host = demo_service(demo_folder, codec, tmp_path_factory.mktemp("eval"))
    yield service
    host.close()


def test_the_demo_model_uses_python_and_answers_right(demo_chat):
    # Greedy: the claim is about the model, not about one sampling run. Through the app's own loop:
    # the real worker and the real sandboxed python tool.
    # Asserted: what it does reliably (README's table has the rest: copying several numbers into a
    # program and back is where the tiny model still slips).
    report = evaluate(demo_chat, per_cell=2, temperature=0.0)
    assert report["parsed"] >= 0.9 * report["n"], report
    lengths = report["reasoning_chars_by_effort"]
    assert lengths["low"] < lengths["medium"] < lengths["high"], lengths
    tasks = report["tasks"]
    for task in ("add", "subtract", "count", "sort"):  # it hands the work to python
        assert tasks[task]["called_python"] >= 0.8 * tasks[task]["n"], (task, report)
    for task in ("count", "convert", "tool", NO_PYTHON, NO_FUNCTION, "other",  # and gets these right,
                 FOLLOW_UP, PARAPHRASED):  # in a chat's later questions and in everyday phrasing too
        assert tasks[task]["right"] >= 0.8 * tasks[task]["n"], (task, report)
    assert tasks[NO_PYTHON]["called_python"] == 0  # it never calls a tool it was not offered


def test_default_model_falls_back_to_the_demo_with_a_banner(tmp_path, codec, monkeypatch):
    monkeypatch.setattr("backend.engines.choose.default_model_blocker", lambda: "this machine has no CUDA GPU")
    stages = []
    engine = choose_engine(Config(data_dir=str(tmp_path)), codec, lambda s, f: stages.append(s))
    try:
        d = engine.description
        assert d.demo and "no CUDA GPU" in d.notice and "--model" in d.notice
        assert any("demo model" in s for s in stages)  # the build showed progress
    finally:
        engine.close()


def test_a_named_model_that_fails_is_an_error_not_a_fallback(tmp_path, codec):
    config = Config(data_dir=str(tmp_path), model=str(tmp_path / "missing"), model_explicit=True)
    with pytest.raises(ModelLoadError):
        choose_engine(config, codec, lambda s, f: None)


def test_this_machine_has_a_reason_or_a_gpu():
    reason = default_model_blocker()
    assert reason is None or "GPU" in reason


def test_training_conversations_are_what_the_app_renders_at_each_step(codec):
    """The second generation of a python turn sees exactly the ids the model was trained on: the
    thought, the call, python's output (read, not learned), then <|start|>assistant."""
    import random

    from backend.harmony.codec import PromptMessage, PromptSettings, tool_message
    from backend.tools.sandbox import TIMEOUT_S
    from backend.tools.toolbox import python_namespace
    from lab.data import WEATHER_TOOL, make, python_output

    sample = make("add", random.Random(1), "medium", True)
    ids, learn = demo_build.sample_ids(codec, sample, random.Random(5))
    rng = random.Random(5)  # the same draws as sample_ids: the date, whether get_weather is offered
    date = f"20{rng.randint(25, 27)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    tools = [WEATHER_TOOL] if rng.random() < 0.15 else []
    settings = PromptSettings(effort="medium", date=date, tools=tools, namespaces=[python_namespace(TIMEOUT_S)])
    steps = [{"role": "assistant", "channel": "analysis", "content": [{"type": "text", "text": sample.reasoning}]},
             {"role": "assistant", "channel": "analysis", "recipient": "python", "content_type": "code",
              "content": [{"type": "text", "text": sample.code}]},
             tool_message("python", "analysis", python_output(sample.code))]
    second = codec.render([PromptMessage("user", sample.question), PromptMessage("assistant", "", harmony=steps)], settings)
    assert ids[:len(second)] == second
    assert not any(learn[len(second) - 12:len(second)])  # python's output and the next header: read only
    assert all(learn[len(second):]) and codec.decode(ids[len(second):]).endswith("<|return|>")


def test_a_follow_up_is_trained_on_the_chat_as_the_app_renders_it(codec):
    """A conversation that continues a chat: its earlier turns in the prompt exactly as the app renders the
    stored ones (harmony keeps an earlier turn's final answer only), and only the turn at hand is learned."""
    import random

    from backend.harmony.codec import PromptMessage, PromptSettings
    from backend.services.pipeline import prompt_turns
    from core.records import MessageView
    from lab.data import make

    rng = random.Random(2)
    sample = make("sort", rng, "low", True)
    sample.earlier = [make("add", rng, "high", True), make("other", rng, "low", True)]
    ids, learn = demo_build.sample_ids(codec, sample, random.Random(7))
    stored = [MessageView(id=i, position=i, role=t.role, content=t.content, harmony=t.harmony)
              for i, t in enumerate(t for e in sample.earlier for t in demo_build.earlier_turns(e))]
    question = MessageView(id=9, position=9, role="user", content=sample.question)
    plain = [PromptMessage(m.role, m.content) for m in stored + [question]]  # what an earlier turn comes down to
    settings = PromptSettings(effort="low")
    assert codec.render(prompt_turns(stored + [question]), settings) == codec.render(plain, settings)
    start = codec.decode(ids).index("<|start|>user<|message|>" + sample.question)
    text = codec.decode(ids)
    assert text.count("<|start|>user") == 3 and sample.earlier[0].answer in text[:start]
    assert sample.earlier[0].reasoning not in text  # an earlier turn's thought is not in the prompt
    first_learned = learn.index(True)
    assert codec.decode(ids[:first_learned]).endswith("<|start|>assistant")  # the turn at hand only
    assert codec.decode(ids[:first_learned]).rfind(sample.question) > text.rfind(sample.earlier[-1].answer)


def test_only_the_demo_model_has_its_own_default_temperature(demo_chat, monkeypatch):
    from backend.engines.base import EngineInfo
    from core.config import DEFAULT_TEMPERATURE, DEMO_TEMPERATURE

    assert demo_chat.default_temperature() == DEFAULT_TEMPERATURE  # a model folder that is not the demo's
    monkeypatch.setattr(demo_chat.pipeline, "engine", lambda: EngineInfo(demo=True))  # what the fallback marks
    assert demo_chat.default_temperature() == DEMO_TEMPERATURE


def test_each_training_program_prints_in_the_sandbox_what_training_assumed():
    """The build computes python's output itself (no sandbox while training); the app runs the same
    program in the real sandbox. They must agree, or the model learns to copy a result the app never shows."""
    import random

    from backend.tools.sandbox import PythonSandbox
    from lab.data import PYTHON_TASKS, make, python_output

    box = PythonSandbox(timeout_s=10)
    assert box.probe() is None
    rng = random.Random(3)
    for task in PYTHON_TASKS:
        for effort in ("low", "high"):
            sample = make(task, rng, effort, True)
            result = box.run(sample.code)
            assert (result.status, result.output) == ("ok", python_output(sample.code)), sample.code
            assert sample.expected in result.output, (sample.code, result.output)
            assert sample.expected in sample.answer


def test_a_count_program_names_the_letter_before_the_word_as_the_question_does():
    # "Count the letter n in banana" -> `ch == 'n' for ch in 'banana'`: with the word first
    # (`'banana'.count('n')`) a retrain wrote a letter of the word instead (41 and 16 of 60 right).
    import random

    from lab.data import make

    rng = random.Random(4)
    for _ in range(20):
        sample = make("count", rng, "medium", True)
        letter, word = sample.question.rstrip("?.").replace("'s are in", " in").split()[-3::2]
        assert sample.code == f"print(sum(ch == {letter!r} for ch in {word!r}))", (sample.question, sample.code)
