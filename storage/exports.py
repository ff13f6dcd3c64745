"""A conversation as a file: JSON with every branch (the tree: each message names its parent, `shown`
lists the branch on screen), Markdown with the branch shown. Plain functions of the records storage
returns; `view` is what the caller may show of the messages (the reasoning-display policy)."""

from __future__ import annotations

from core.records import ConversationView, MessageStatus, MessageView, malformed_note
from core.steps import display_steps, fenced, fold_title
from core.trace import to_json
from storage.tree import Tree

FORMAT = "gpt-oss-chat/2"  # /2: messages form a tree (parent_id), `shown` is the branch on screen


def message_data(m: MessageView) -> dict:
    """A message as plain JSON data (exports, share snapshots, the API's open_conversation)."""
    return {**m.__dict__, "trace": to_json(m.trace)}


def conversation_json(conv: ConversationView, view=None) -> dict:
    messages = view(conv.messages) if view else conv.messages
    return {"format": FORMAT, "id": conv.id, "title": conv.title, "created": conv.created,
            "updated": conv.updated, "settings": conv.settings, "shown": Tree.of(conv.messages).path(conv.leaf_id),
            "messages": [message_data(m) for m in messages]}


def _markdown_steps(m: MessageView, include_reasoning: bool) -> list[str]:
    """The turn's steps in order, each in a closed <details> (thoughts, preambles, tool runs), all in one
    fold, as in the chat ("Thought for 3.1 s · ran python once")."""
    steps = display_steps(m, include_reasoning=include_reasoning)
    if not steps:
        return []
    lines = ["", f"<details><summary>{fold_title(steps)}</summary>"]
    for step in steps:
        if step.kind == "tool":
            body = fenced(step.call.arguments if step.call else "") + "\n\n" + fenced(step.result.output if step.result else "")
        else:
            body = step.text
        lines += ["", f"<details><summary>{step.title}</summary>", "", body, "", "</details>"]
    return lines + ["", "</details>"]


def conversation_markdown(conv: ConversationView, include_reasoning: bool = True, view=None) -> str:
    """The branch shown; an answer with siblings says which of them it is."""
    lines = [f"# {conv.title}", ""]
    for m in (view(conv.messages) if view else conv.messages):
        heading = "You" if m.role == "user" else "Assistant"
        if len(m.siblings) > 1:
            heading += f" ({m.branch_index} of {len(m.siblings)})"
        lines.append(f"## {heading}")
        if m.role == "assistant":
            lines += _markdown_steps(m, include_reasoning)
        lines += ["", m.content, ""]
        if m.role == "assistant" and m.status != MessageStatus.COMPLETE:
            lines += [f"*({m.status})*", ""]
        if malformed_note(m):
            lines += [f"*({malformed_note(m)})*", ""]
    return "\n".join(lines)
