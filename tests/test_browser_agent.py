"""The agent's trace in Chromium: thought -> python run -> thought -> answer streams in order, and a
reload in the middle of the tool run shows every step so far and follows the rest. (Every test takes
the `browser` fixture first, which skips them where there is no Chromium.)"""

import pytest

from testkit.net import free_port
from testkit.page import (
    STEP_TITLE,
    THOUGHT_TITLE,
    field,
    open_page,
    ready,
    send,
    set_temperature,
    shot,
    stats_lines,
    step_titles,
    thought_titles,
    url_conversation,
    wait_answers,
)

CALL = ("<|channel|>analysis<|message|>I should compute this with python.<|end|>"
        "<|start|>assistant to=python<|channel|>analysis code<|message|>"
        "import time\ntime.sleep(4)\nprint(17 + 25)<|call|>")
ANSWER = ("<|channel|>analysis<|message|>python printed 42.<|end|>"
          "<|start|>assistant<|channel|>final<|message|>17 + 25 = **42**.<|return|>")
LIVE_TITLES = ("() => [...document.querySelectorAll('#live .children .thought-group > .title')]"
               ".map(e => e.innerText)")  # the steps, in the fold that is open while the answer is written


@pytest.fixture
def agent_app(tmp_path, launched):
    from core.config import Config

    config = Config(data_dir=str(tmp_path), port=free_port(), max_new_tokens=400, tools="python,calculate")
    parts = launched(config, text=CALL, then=(ANSWER,))
    return f"http://127.0.0.1:{config.port}/", parts


def test_a_multi_step_trace_streams_in_order_and_survives_a_reload(browser, agent_app):
    url, parts = agent_app
    pg = open_page(browser, url, height=1000)
    assert pg.locator("#tools input[type=checkbox]:checked").count() == 2  # python and calculate, ticked
    pg.locator("#settings .label-wrap").first.click()
    pg.wait_for_function("() => (document.querySelector('#prompt-preview textarea') || {value: ''}).value"
                         ".includes('## python')")  # what the model reads, tools included
    send(pg, "What is 17 + 25?")
    pg.wait_for_function(f"() => ({LIVE_TITLES})().some(t => t.startsWith('Running python'))")
    shot(pg, "agent-tool-running")
    pg.reload()  # in the middle of the tool run
    ready(pg)
    pg.wait_for_function(f"() => ({LIVE_TITLES})().some(t => t.startsWith('Running python'))")
    titles = pg.evaluate(LIVE_TITLES)
    assert titles[0].startswith("Thought") and titles[1].startswith("Running python")
    wait_answers(pg, 1)
    shot(pg, "agent-done")
    fold = pg.locator(f"#chat {THOUGHT_TITLE}").first.inner_text()
    assert fold.startswith("Thought for") and fold.endswith("· ran python once")  # one line for the steps
    titles = step_titles(pg)
    assert titles[0].startswith("Thought for") and titles[1].startswith("Ran python ·")
    assert titles[2].startswith("Thought for") and len(titles) == 3
    assert "effort" in stats_lines(pg)[0] and "1 tool call in" in stats_lines(pg)[0]
    chat = pg.locator("#chat")
    assert chat.inner_text().strip().endswith("17 + 25 = 42.") or "17 + 25 = 42." in chat.inner_text()
    pg.locator(f"#chat {STEP_TITLE}", has_text="Ran python").click()  # open the step
    pg.wait_for_function("() => document.querySelector('#chat').innerText.includes('print(17 + 25)')")
    assert "42" in chat.inner_text()
    cid = url_conversation(pg)
    stored = parts.service.repo.get("local", cid).messages[-1]
    assert [e.kind for e in stored.trace] == ["reasoning", "tool_call", "tool_result", "reasoning"]
    pg.context.close()


WEATHER_CALL = ("<|channel|>analysis<|message|>I need the weather function.<|end|>"
                "<|start|>assistant to=functions.get_weather<|channel|>commentary <|constrain|>json<|message|>"
                '{"city": "Oslo"}<|call|>')
WEATHER_ANSWER = ("<|channel|>analysis<|message|>The user said it is sunny.<|end|>"
                  "<|start|>assistant<|channel|>final<|message|>It is sunny in Oslo.<|return|>")
FUNCTIONS = ('[{"name": "get_weather", "description": "Weather in a city", "parameters": {"type": "object", '
             '"properties": {"city": {"type": "string"}}}}]')


@pytest.fixture
def weather_app(tmp_path, launched):
    from core.config import Config

    config = Config(data_dir=str(tmp_path), port=free_port(), max_new_tokens=400, tools="none")
    launched(config, text=WEATHER_CALL, then=(WEATHER_ANSWER,))
    return f"http://127.0.0.1:{config.port}/"


def test_a_users_function_is_answered_by_typing_its_result(browser, weather_app):
    pg = open_page(browser, weather_app, height=1000)
    pg.locator("#settings .label-wrap").first.click()
    pg.locator(field("functions")).fill(FUNCTIONS)
    pg.locator(field("functions")).blur()
    pg.wait_for_function("() => document.querySelector('#prompt-preview textarea').value.includes('get_weather')")
    send(pg, "Weather in Oslo?")
    pg.locator("#function-row").wait_for(state="visible")
    assert "get_weather" in pg.locator("#function-row").inner_text()
    assert any("waiting for its result" in t for t in thought_titles(pg))
    pg.locator(field("function-result")).fill('{"sky": "sunny"}')
    pg.locator("#function-send").click()
    pg.wait_for_function("() => document.querySelector('#chat').innerText.includes('It is sunny in Oslo.')")
    pg.locator("#function-row").wait_for(state="hidden")
    titles = step_titles(pg)
    assert titles[0].startswith("Thought for") and titles[1] == "Called get_weather · your result"
    assert titles[2].startswith("Thought for") and "effort" in stats_lines(pg)[0]
    shot(pg, "agent-user-function")
    pg.context.close()


def test_new_chat_leaves_a_call_waiting_for_its_result_behind(browser, weather_app):
    """The function box belongs to the conversation whose answer waits: a new chat does not show it."""
    pg = open_page(browser, weather_app, height=1000)
    pg.locator("#settings .label-wrap").first.click()
    pg.locator(field("functions")).fill(FUNCTIONS)
    pg.locator(field("functions")).blur()
    send(pg, "Weather in Oslo?")
    pg.locator("#function-row").wait_for(state="visible")
    pg.locator("#new-chat").click()
    pg.locator("#function-row").wait_for(state="hidden")
    pg.locator("#conversations").get_by_text("Weather in Oslo?").click()  # back: it still waits
    pg.locator("#function-row").wait_for(state="visible")
    pg.context.close()


def test_the_demo_model_runs_python_for_the_banners_own_example(browser, demo_app):
    pg = open_page(browser, demo_app, height=1000)
    assert "What is 17 + 25?" in pg.locator("#status-banner").inner_text()  # the example the banner gives
    assert pg.locator("#tools input[type=checkbox]:checked").count() == 1  # python, what it was trained on
    set_temperature(pg, "0")  # greedy: the model's best, not a sampling draw
    send(pg, "What is 17 + 25?")
    wait_answers(pg, 1)
    shot(pg, "demo-python")
    titles = thought_titles(pg)
    assert any(t.startswith("Ran python") for t in titles), titles
    answer = pg.locator("#chat [data-testid='bot']").all_inner_texts()
    assert any("42" in a and "Ran python" not in a for a in answer), answer
    pg.context.close()


def test_the_demo_model_page_starts_at_its_own_temperature(browser, demo_app):
    """The tiny model is right far more often at 0.3 than at gpt-oss's 1.0 (README): its page starts there."""
    from core.config import DEMO_TEMPERATURE

    pg = open_page(browser, demo_app)
    pg.locator("#settings .label-wrap").first.click()
    slider = pg.locator("#temperature input[type=range]")
    pg.wait_for_function("([el, v]) => el.value === v", arg=[slider.element_handle(), str(DEMO_TEMPERATURE)])
    pg.context.close()


# the text of the chat's last answer: its message that is neither a fold of steps nor the stats line
LAST_ANSWER = """() => [...document.querySelectorAll('#chat .bot.message > .message')]
  .filter(m => !m.querySelector('.thought-group, .message-content p > sub')).map(m => m.innerText).pop() || ''"""
FIVE = [("What is 17 + 25?", "42"), ("what's 38 + 46? please", "84"), ("Sort these numbers: 31, 7, 19.", "7, 19, 31"),
        ("How many r's are in strawberry?", "3"), ("Can you convert 3 km to m?", "3000")]


def test_the_demo_model_answers_five_mixed_questions_in_one_chat(browser, demo_app):
    """A visitor's chat: five questions in a row, everyday phrasing included; each answer right (the model
    copies from the turn at hand, not from the earlier answers in its prompt)."""
    pg = open_page(browser, demo_app, height=1000)
    set_temperature(pg, "0")
    for n, (question, expected) in enumerate(FIVE, start=1):
        send(pg, question)
        wait_answers(pg, n, timeout_ms=120_000)
        answer = pg.evaluate(LAST_ANSWER)
        assert expected in answer, (question, answer)
    shot(pg, "demo-five-questions")
    pg.context.close()
