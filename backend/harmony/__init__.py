"""Harmony: render prompts and parse completions (codec), chat deltas back into harmony ids (bridge),
the o200k vocabulary offline (vocab). Knows nothing of engines or Gradio."""
