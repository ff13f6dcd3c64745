"""The Gradio page: layout, rendering of stored messages, and event wiring."""
