"""The app's own OpenAI-compatible API (/v1), on the same worker as the page."""
