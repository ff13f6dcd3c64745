"""The one place where our errors become gr.Error (a toast on the page, no traceback)."""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging

import gradio as gr

from core.errors import ChatError

log = logging.getLogger(__name__)
UNEXPECTED = "Something went wrong on the server ({}). Your messages are saved; please try again."


def _to_gr(exc: Exception) -> gr.Error:
    if isinstance(exc, ChatError):
        return gr.Error(exc.user_message)
    log.exception("unexpected error in a handler")
    return gr.Error(UNEXPECTED.format(type(exc).__name__))


@contextlib.contextmanager
def _as_user_errors():
    """The one translation every kind of handler shares: the app's errors (and any other) as gr.Error."""
    try:
        yield
    except gr.Error:
        raise
    except Exception as exc:
        raise _to_gr(exc) from exc


def user_errors(fn):
    """Wrap a handler (function, coroutine, generator or async generator) so errors reach the user as
    gr.Error."""
    if inspect.isasyncgenfunction(fn):
        @functools.wraps(fn)
        async def agen_wrapper(*args, **kwargs):
            with _as_user_errors():
                async for item in fn(*args, **kwargs):
                    yield item
        return agen_wrapper

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            with _as_user_errors():
                yield from fn(*args, **kwargs)
        return gen_wrapper

    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def async_wrapper(*args, **kwargs):
            with _as_user_errors():
                return await fn(*args, **kwargs)
        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _as_user_errors():
            return fn(*args, **kwargs)
    return wrapper
