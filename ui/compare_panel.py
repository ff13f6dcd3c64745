"""The Compare efforts panel: a chart above three columns (low, medium, high), each an answer being written
with its own "Continue with this one". Built here, wired in ui/compare.py; the chart is drawn here from
plain figures (backend/services/compare.py)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from backend.services.compare import EffortFigures
from core.config import EFFORTS

COLOURS = {"low": "#93c5fd", "medium": "#3b82f6", "high": "#1e3a8a"}
# (what the chart compares, its heading, how a value is written)
METRICS = (("reasoning_tokens", "Reasoning tokens", lambda v: f"{v:,.0f}"),
           ("seconds_to_answer", "Seconds to the answer", lambda v: f"{v:.1f} s"),
           ("tool_calls", "Tool calls", lambda v: f"{v:.0f}"))
BUTTON = "Compare efforts"
PICKED_CHARS = 28  # of the picked message, on the button


def button_label(picked_text: str | None) -> str:
    """The button's text: which message it compares when one was picked in the chat."""
    if not picked_text:
        return BUTTON
    text = " ".join(picked_text.split())
    return f"{BUTTON} on “{text[:PICKED_CHARS]}{'…' * (len(text) > PICKED_CHARS)}”"


PANEL_W, ROW_H, TOP, LABEL_W, BAR_W = 240, 30, 26, 64, 110


@dataclass
class ComparePanel:
    chart: gr.HTML
    columns: dict[str, gr.Chatbot]  # effort -> its column
    keep: dict[str, gr.Button]  # effort -> "Continue with this one"
    picked: gr.Textbox  # the id of the user message clicked in the chat to compare ("": none picked)
    button: gr.Button | None = None  # "Compare efforts", beside Regenerate (built with that row)

    @property
    def outputs(self) -> list:
        """What showing a comparison changes: the chart and the columns."""
        return [self.chart, *self.columns.values()]


def build_compare() -> ComparePanel:
    """The panel (call inside the page's Blocks, where it goes). Hidden by CSS while its chart is empty, so
    that no streamed update has to change a component's visibility."""
    columns, keep = {}, {}
    picked = gr.Textbox(visible="hidden", elem_id="compare-picked")
    with gr.Column(elem_id="compare"):
        chart = gr.HTML(elem_id="compare-chart")
        with gr.Row(equal_height=False):
            for effort in EFFORTS:
                with gr.Column(min_width=200):
                    columns[effort] = gr.Chatbot(label=f"{effort} effort", elem_id=f"compare-{effort}",
                                                 height="auto", max_height="60vh", sanitize_html=True,
                                                 allow_tags=False, group_consecutive_messages=True,
                                                 feedback_options=None, buttons=["copy"])
                    keep[effort] = gr.Button("Continue with this one", size="sm", elem_id=f"keep-{effort}")
    return ComparePanel(chart, columns, keep, picked)


def effort_chart(figures: list[EffortFigures]) -> str:
    """Bars per effort for each figure, side by side; "…" on a figure still growing. Only numbers and
    effort names go into it (no user text), so it is safe as HTML."""
    if not figures:
        return ""
    height = TOP + ROW_H * len(figures) + 4
    parts = [f'<svg class="effort-chart" viewBox="0 0 {PANEL_W * len(METRICS)} {height}" role="img" '
             f'aria-label="Reasoning tokens, seconds to the answer and tool calls per effort" '
             f'style="width:100%;max-height:{height * 1.4:.0f}px">']
    for i, (name, heading, written) in enumerate(METRICS):
        x = i * PANEL_W
        values = [getattr(f, name) for f in figures]
        top = max([v for v in values if v is not None] + [0]) or 1
        parts.append(f'<text x="{x + 4}" y="16" font-size="13" font-weight="600" fill="currentColor">{heading}</text>')
        for j, (f, value) in enumerate(zip(figures, values)):
            y = TOP + j * ROW_H
            width = 0 if value is None else max(BAR_W * value / top, 1)
            text = "—" if value is None else written(value) + (" …" if f.writing else "")
            parts.append(
                f'<text x="{x + 4}" y="{y + 15}" font-size="12" fill="currentColor">{f.effort}</text>'
                f'<rect x="{x + LABEL_W}" y="{y + 3}" width="{width:.1f}" height="16" rx="3" '
                f'fill="{COLOURS.get(f.effort, "#888")}" data-effort="{f.effort}" data-metric="{name}" '
                f'data-value="{"" if value is None else round(value, 3)}"/>'
                f'<text x="{x + LABEL_W + width + 4:.1f}" y="{y + 15}" font-size="12" fill="currentColor">{text}</text>')
    parts.append("</svg>")
    return "".join(parts)
