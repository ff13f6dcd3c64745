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
from core.records import SharedConversation, malformed_note, no_answer_note, status_note
from core.steps import DisplayStep, display_steps, fold_title, link_citations, pages_of

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
details.steps { margin: 6px 0; color: #57606a; } details.steps > :not(summary) { margin-left: 14px; }
details.reasoning { background: #f6f8fa; border-radius: 8px; padding: 4px 10px; margin: 6px 0; color: #57606a; }
.stats { font-size: .8em; color: #57606a; } .call, .preamble { color: #57606a; font-size: .9em; } pre { overflow-x: auto; background: #f6f8fa; padding: 8px; }
a.copy { display: inline-block; padding: 8px 14px; border-radius: 8px; background: #1f6feb; color: #fff;
         text-decoration: none; }
"""


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{html.escape(title)}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>')


def _step(step: DisplayStep) -> str:
    """One step of a turn, as in the chat: thoughts closed, preambles shown, tool runs with what came back."""
    title = html.escape(step.title)
    if step.kind == "thought":
        return f'<details class="reasoning"><summary>{title}</summary>{_MD.render(step.text)}</details>'
    if step.kind == "preamble":
        return f'<div class="preamble"><div>{title}</div>{_MD.render(step.text)}</div>'
    arguments, output = step.call.arguments if step.call else "", step.result.output if step.result else ""
    return (f'<details class="call"><summary>{title}</summary><pre>{html.escape(arguments)}</pre>'
            f'<pre>{html.escape(output)}</pre></details>')


def _message(m, include_reasoning: bool) -> str:
    if m.role == "user":
        return f'<article class="msg user"><div class="role">User</div>{_MD.render(m.content)}</article>'
    parts = ['<article class="msg assistant"><div class="role">Assistant</div>']
    steps = display_steps(m, include_reasoning=include_reasoning)
    if steps:  # one fold for the steps, as in the chat
        parts.append(f'<details class="steps"><summary>{html.escape(fold_title(steps))}</summary>'
                     f'{"".join(_step(step) for step in steps)}</details>')
    if m.content or not steps or no_answer_note(m):
        # citations link to their sources (relative to the app, one level up from /s/<token>)
        pages = {c: {**p, "url": "../" + p["url"] if p.get("url", "").startswith("doc/") else p.get("url")}
                 for c, p in pages_of(m).items()}
        missing = no_answer_note(m) or "(no answer)"
        parts.append(_MD.render(link_citations(m.content, pages)) if m.content else
                     f"<p><em>{html.escape(missing)}</em></p>")
    if malformed_note(m):
        parts.append(f"<p><em>{html.escape(malformed_note(m))}</em></p>")
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


def render_document(title: str, source: str, lines: list[str]) -> str:
    """A cited document, one anchored line each (`#L12`), numbered as the model saw it."""
    rows = "".join(f'<div id="L{n}" class="line"><span class="n">L{n}</span> {html.escape(line)}</div>'
                   for n, line in enumerate(lines))
    style = "<style>.line{font:13px/1.5 monospace;white-space:pre-wrap}.n{color:#8c959f}:target{background:#fff8c5}</style>"
    return _page(title, f"<h1>{html.escape(title)}</h1><p class=\"meta\">{html.escape(source)}</p>{style}{rows}")
