"""The one place where our errors become gr.Error (a toast on the page, no traceback)."""

from __future__ import annotations

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


def user_errors(fn):
    """Wrap a handler (function or generator) so errors reach the user as gr.Error."""
    if inspect.isasyncgenfunction(fn):
        @functools.wraps(fn)
        async def agen_wrapper(*args, **kwargs):
            try:
                async for item in fn(*args, **kwargs):
                    yield item
            except gr.Error:
                raise
            except Exception as exc:
                raise _to_gr(exc) from exc
        return agen_wrapper

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as exc:
                raise _to_gr(exc) from exc
        return gen_wrapper

    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def async_wrapper(*args, **kwargs):
            try:
                return await fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as exc:
                raise _to_gr(exc) from exc
        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:
            raise _to_gr(exc) from exc
    return wrapper
