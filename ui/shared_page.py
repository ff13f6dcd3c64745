"""The read-only page behind a share link: plain server-rendered HTML, no login, no script.

Markdown is rendered with markdown-it with raw HTML turned off (HTML in a message shows as
text), and the page is served with a Content-Security-Policy that forbids every script, so
nothing in a shared conversation can run in a visitor's browser. Reasoning, when the owner
included it, sits in a closed <details> panel above each answer.
"""

from __future__ import annotations

import html

from markdown_it import MarkdownIt

from core.errors import LINK_GONE
from core.records import SharedConversation, status_note, trace_title

_MD = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",  # the token is in the URL: never send it on to other sites
    "X-Robots-Tag": "noindex, nofollow",
    "Cache-Control": "no-store",  # a revoked link must not live on in a cache
    "X-Content-Type-Options": "nosniff",
}
STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f7f7f8; color: #1f2328; }
main { max-width: 820px; margin: 0 auto; padding: 24px 16px 64px; }
h1 { font-size: 1.4em; margin: 0 0 4px; } .meta { color: #57606a; margin: 0 0 20px; }
.msg { background: #fff; border: 1px solid #d0d7de; border-radius: 10px; padding: 10px 16px; margin: 12px 0; }
.msg.user { background: #eef4ff; } .role { font-weight: 600; font-size: .85em; color: #57606a; }
details.reasoning { background: #f6f8fa; border-radius: 8px; padding: 4px 10px; margin: 6px 0; color: #57606a; }
.stats { font-size: .8em; color: #57606a; } .call, .preamble { color: #57606a; font-size: .9em; } pre { overflow-x: auto; background: #f6f8fa; padding: 8px; }
a.copy { display: inline-block; padding: 8px 14px; border-radius: 8px; background: #1f6feb; color: #fff;
         text-decoration: none; }
"""


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{html.escape(title)}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>')


def _trace(entry: dict) -> str:
    """Preambles (user-visible commentary) and tool calls, as in the chat."""
    title = html.escape(trace_title(entry))
    if entry.get("kind") == "tool_call":
        return f'<div class="call">{title}<pre>{html.escape(entry.get("arguments", ""))}</pre></div>'
    return f'<div class="preamble"><div>{title}</div>{_MD.render(entry.get("text", ""))}</div>'


def _message(m, include_reasoning: bool) -> str:
    if m.role == "user":
        return f'<article class="msg user"><div class="role">User</div>{_MD.render(m.content)}</article>'
    parts = ['<article class="msg assistant"><div class="role">Assistant</div>']
    if include_reasoning and m.reasoning:
        seconds = f" for {m.reasoning_time:.0f} s" if m.reasoning_time else ""
        parts.append(f'<details class="reasoning"><summary>Thought{seconds}</summary>{_MD.render(m.reasoning)}'
                     f'</details>')
    parts += [_trace(entry) for entry in m.trace]
    if m.content or not m.trace:
        parts.append(_MD.render(m.content) if m.content else "<p><em>(no answer)</em></p>")
    bits = [f"{m.effort} effort" if m.effort else "", status_note(m.status, m.stop_reason)]
    if any(bits):
        parts.append(f'<div class="stats">{html.escape(" · ".join(b for b in bits if b))}</div>')
    return "".join(parts) + "</article>"


def render_shared(shared: SharedConversation, copy_href: str) -> str:
    reasoning = "with the model's reasoning" if shared.include_reasoning else "answers only, reasoning not shared"
    body = [f"<h1>{html.escape(shared.title)}</h1>",
            f'<p class="meta">A read-only shared conversation with gpt-oss · {html.escape(reasoning)}</p>']
    body += [_message(m, shared.include_reasoning) for m in shared.messages]
    body.append(f'<p><a class="copy" id="copy" href="{html.escape(copy_href)}">Copy into a new chat</a></p>')
    return _page(f"{shared.title} — gpt-oss chat", "".join(body))


def render_gone() -> str:
    return _page("Link not available", f'<p id="gone">{html.escape(LINK_GONE)}</p>')
