"""Stored messages -> Gradio chat messages: one answer, one bubble.

An answer is its steps folded under one line ("Thought for 3.1 s · ran python once": a Gradio thought
whose children are the steps, nested by metadata id / parent_id), the answer text, and the stats as a
quiet line; the chat groups an answer's consecutive messages into one bubble with one copy button
(ui/layout.py makes it copy the answer's text). Reasoning stays data: each thought is a Gradio
thought message (metadata title and status), never a prefix in the answer text.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import gradio as gr

from core.records import MessageStatus, MessageView, malformed_note, no_answer_note, status_note
from core.steps import DisplayStep, display_steps, fenced, fold_title, link_citations, pages_of
from core.trace import ToolCallStep, ToolResultStep


class History(NamedTuple):
    rows: list[gr.ChatMessage]  # what the chatbot shows
    positions: list[int | None]  # per row: the position of the user message it shows (for edits)

    def position_at(self, index) -> int | None:
        """The position of the user message in the row a chatbot event names (its `index`: a row number,
        or [row, ...]); None for any other row."""
        row = index if isinstance(index, int) else index[0]
        return self.positions[row] if 0 <= row < len(self.positions) else None


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
    if m.seconds_to_answer is not None and m.trace:  # thinking or tools came first: when the answer began
        bits.append(f"answer after {m.seconds_to_answer:.1f} s")
    if m.reasoning_tokens is not None:
        bits.append(f"{m.reasoning_tokens} reasoning + {m.answer_tokens or 0} answer tokens")
    if m.tokens_per_s:
        bits.append(f"{m.tokens_per_s:.1f} tokens/s")
    runs = [e for e in m.trace or [] if isinstance(e, ToolResultStep)]
    if runs:  # tool time apart from the model's
        seconds = sum(e.seconds or 0 for e in runs)
        bits.append(f"{len(runs)} tool call{'s' * (len(runs) != 1)} in {seconds:.1f} s")
    if m.context_tokens and m.context_window:
        bits.append(f"context {_thousands(m.context_tokens)} / {_thousands(m.context_window)} tokens")
    if m.left_out:
        bits.append(f"the {m.left_out} earliest message{'s' * (m.left_out != 1)} not in the model's context")
    note = status_note(m.status, m.stop_reason)
    if note:
        bits.append(note)
    return " · ".join(bits)


def _thousands(tokens: int) -> str:
    return f"{tokens / 1000:.1f}k" if tokens >= 1000 else str(tokens)


def _step_message(step: DisplayStep, pages: dict, fold: str, index: int) -> gr.ChatMessage:
    # no "duration": the title already says how long (Gradio would add it again in brackets)
    meta = {"title": step.title, "status": "pending" if step.pending else "done", "id": f"{fold}-{index}",
            "parent_id": fold}
    if step.kind == "tool":
        content = tool_body(step, pages)
    else:
        content = escape_html(step.text)
    return gr.ChatMessage(role="assistant", content=content, metadata=meta)


def tool_body(step: DisplayStep, pages: dict) -> str:
    """What a tool step shows when opened: the call as the model wrote it, then what came back."""
    call, result = step.call or ToolCallStep(""), step.result
    recipient, arguments = call.recipient, call.arguments
    if recipient == "python":
        parts = [fenced(arguments, "python")]
    elif recipient.startswith("browser."):
        parts = []
    else:
        parts = [fenced(_pretty_json(arguments), "json")]
    if result is None:
        return "\n\n".join(parts)
    links = [p for p in result.pages if "link" in p]
    if links:
        parts.append("\n".join(f"{p['link']}. [{_link_text(p.get('title'))}]({p.get('url', '')})" for p in links))
    elif recipient == "browser.open" and result.pages:
        page = result.pages[0]
        parts.append(f"[{_link_text(page.get('title'))}]({page.get('url', '')})")
    parts.append(fenced(result.output, "text"))
    return "\n\n".join(parts)


def _link_text(title) -> str:
    return escape_html(str(title or "source")).replace("[", "(").replace("]", ")")


def _pretty_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def assistant_messages(m: MessageView, live: bool = False) -> list[gr.ChatMessage]:
    """A turn in one bubble: its steps in the order they happened under one fold (open while it is
    written), then the answer, then the stats line."""
    streaming = live and m.status == MessageStatus.STREAMING
    pages = pages_of(m)
    steps = display_steps(m, streaming)
    out = []
    if steps:
        fold, pending = f"turn-{m.id}", any(step.pending for step in steps)
        out.append(gr.ChatMessage(role="assistant", content="", metadata={
            "title": fold_title(steps), "id": fold, "status": "pending" if pending else "done"}))
        out += [_step_message(step, pages, fold, i) for i, step in enumerate(steps)]
    if m.content:
        out.append(gr.ChatMessage(role="assistant", content=link_citations(escape_html(m.content), pages)))
    if m.error:
        out.append(gr.ChatMessage(role="assistant", content=escape_html(m.error),
                                  metadata={"title": "The answer failed"}))
    for note in [] if streaming else [no_answer_note(m), malformed_note(m)]:
        if note:
            out.append(gr.ChatMessage(role="assistant", content=f"*{note}*"))
    if not streaming:
        out.append(gr.ChatMessage(role="assistant", content=f"<sub>{escape_html(stats_line(m))}</sub>"))
    return out


def page_value(chatbot: gr.Chatbot, rows: list[gr.ChatMessage]) -> list[dict]:
    """Chat rows in the form the page receives (the chatbot's own postprocess), for events that run
    with postprocess=False so that Gradio does not process a value again on every streamed update."""
    return chatbot.postprocess(rows).model_dump()


BRANCH_LINK = "#branch-"  # a link to a sibling: the page's script (ui/layout.py) shows its branch


def branch_nav(m: MessageView) -> str | None:
    """"‹ 2 / 3 ›" under a message with siblings (other answers, other versions of an edited message): each
    arrow a link to the sibling before or after; None for a message without any."""
    count, at = len(m.siblings), m.branch_index
    if count < 2 or not at:
        return None
    back = f"[‹]({BRANCH_LINK}{m.siblings[at - 2]})" if at > 1 else "‹"
    on = f"[›]({BRANCH_LINK}{m.siblings[at]})" if at < count else "›"
    what = "answer" if m.role == "assistant" else "version of your message"
    return f"{back} **{at} / {count}** {on} · {what}"


def message_rows(m: MessageView) -> list[gr.ChatMessage]:
    rows = [gr.ChatMessage(role="user", content=escape_html(m.content))] if m.role == "user" else assistant_messages(m)
    nav = branch_nav(m)
    if nav:
        rows.append(gr.ChatMessage(role="assistant", content=nav))
    return rows


def render_history(messages: list[MessageView]) -> History:
    """Chat rows, and for each row the position of the user message it shows (for edits)."""
    rows, positions = [], []
    for m in messages:
        r = message_rows(m)
        rows += r
        positions += [m.position if m.role == "user" else None] + [None] * (len(r) - 1)
    return History(rows, positions)
