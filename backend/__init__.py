"""Backend: harmony rendering/parsing, engines and the inference worker (no Gradio here)."""
