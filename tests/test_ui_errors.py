"""ui/errors.py: every kind of handler (function, generator, async generator, coroutine) turns the app's
errors into gr.Error with the user-facing message, and anything else into a sentence, not a traceback."""

from __future__ import annotations

import anyio
import gradio as gr
import pytest

from core.errors import InputError
from ui.errors import user_errors


def plain():
    raise InputError("Pick one of the answers to show.")


def generator():
    yield 1
    raise InputError("Pick one of the answers to show.")


async def agenerator():
    yield 1
    raise InputError("Pick one of the answers to show.")


async def coroutine():
    raise InputError("Pick one of the answers to show.")


async def broken():
    raise TypeError("internal detail")


def run(fn):
    wrapped = user_errors(fn)
    if fn is plain:
        return wrapped()
    if fn is generator:
        return list(wrapped())

    async def drive():
        if fn is agenerator:
            return [x async for x in wrapped()]
        return await wrapped()
    return anyio.run(drive)


@pytest.mark.parametrize("fn", [plain, generator, agenerator, coroutine])
def test_each_kind_of_handler_says_the_users_message(fn):
    with pytest.raises(gr.Error) as caught:
        run(fn)
    assert caught.value.message == "Pick one of the answers to show."


def test_an_unexpected_error_becomes_a_sentence_without_its_details():
    with pytest.raises(gr.Error) as caught:
        run(broken)
    assert "internal detail" not in caught.value.message and "try again" in caught.value.message
