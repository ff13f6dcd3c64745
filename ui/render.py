"""Stored messages -> Gradio chat messages (thoughts, trace entries, answer, stats line).

Reasoning stays data: it becomes a Gradio thought message (metadata title,
status, duration), never a prefix in the answer text.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import gradio as gr

from core.records import MessageStatus, MessageView, status_note, trace_title


class History(NamedTuple):
    rows: list[gr.ChatMessage]  # what the chatbot shows
    positions: list[int | None]  # per row: the position of the user message it shows (for edits)


def escape_html(text: str) -> str:
    """Show HTML as text: escape it outside Markdown code (code is shown literally anyway).

    Gradio's sanitizer stays on as a second line of defence.
    """
    out, in_fence = [], False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            out.append(line)
            continue
        out.append(line if in_fence else _escape_outside_inline_code(line))
    return "\n".join(out)


def _escape_outside_inline_code(line: str) -> str:
    parts = line.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: no code span, escape everything
        return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def stats_line(m: MessageView) -> str:
    bits = [f"{m.effort or '?'} effort"]
    if m.ttft is not None:
        bits.append(f"{m.ttft:.2f} s to first token")
    if m.reasoning_time is not None:
        bits.append(f"thought {m.reasoning_time:.1f} s")
    if m.reasoning_tokens is not None:
        bits.append(f"{m.reasoning_tokens} reasoning + {m.answer_tokens or 0} answer tokens")
    if m.tokens_per_s:
        bits.append(f"{m.tokens_per_s:.1f} tokens/s")
    note = status_note(m.status, m.stop_reason)
    if note:
        bits.append(note)
    return " · ".join(bits)


def _thought(m: MessageView, live: bool) -> gr.ChatMessage:
    thinking = live and not m.content and m.status == MessageStatus.STREAMING
    if thinking:
        meta = {"title": "Thinking…", "status": "pending"}
    else:
        meta = {"title": "Thought" if m.reasoning_time is None else f"Thought for {m.reasoning_time:.0f} s",
                "status": "done"}
        if m.reasoning_time is not None:
            meta["duration"] = round(m.reasoning_time, 1)
    return gr.ChatMessage(role="assistant", content=escape_html(m.reasoning), metadata=meta)


def _trace(entry: dict) -> gr.ChatMessage:
    if entry.get("kind") == "tool_call":
        args = entry.get("arguments", "")
        try:
            args = json.dumps(json.loads(args), indent=2, ensure_ascii=False)
        except ValueError:
            pass
        return gr.ChatMessage(role="assistant", content=f"```json\n{args}\n```",
                              metadata={"title": trace_title(entry), "status": "done"})
    return gr.ChatMessage(role="assistant", content=escape_html(entry.get("text", "")),
                          metadata={"title": trace_title(entry), "status": "done"})


def assistant_messages(m: MessageView, live: bool = False) -> list[gr.ChatMessage]:
    out = []
    if m.reasoning:
        out.append(_thought(m, live))
    out += [_trace(e) for e in m.trace]
    if m.content:
        out.append(gr.ChatMessage(role="assistant", content=escape_html(m.content)))
    if m.error:
        out.append(gr.ChatMessage(role="assistant", content=escape_html(m.error),
                                  metadata={"title": "The answer failed"}))
    if not live or m.status != MessageStatus.STREAMING:
        out.append(gr.ChatMessage(role="assistant", content=_stats_detail(m),
                                  metadata={"title": stats_line(m), "status": "done"}))
    return out


def _stats_detail(m: MessageView) -> str:
    return f"Stop reason: {m.stop_reason or m.status}. Status: {m.status}."


def page_value(chatbot: gr.Chatbot, rows: list[gr.ChatMessage]) -> list[dict]:
    """Chat rows in the form the page receives (the chatbot's own postprocess), for events that run
    with postprocess=False so that Gradio does not process a value again on every streamed update."""
    return chatbot.postprocess(rows).model_dump()


def message_rows(m: MessageView) -> list[gr.ChatMessage]:
    if m.role == "user":
        return [gr.ChatMessage(role="user", content=escape_html(m.content))]
    return assistant_messages(m)


def render_history(messages: list[MessageView]) -> History:
    """Chat rows, and for each row the position of the user message it shows (for edits)."""
    rows, positions = [], []
    for m in messages:
        r = message_rows(m)
        rows += r
        positions += [m.position if m.role == "user" else None] * len(r)
    return History(rows, positions)
