"""Helpers that the tests and the benches share: free ports, a tiny GptOss checkpoint, a forced
token sequence (the fake at the engine seam), the browser page and stream timing helpers. Imported by
tests/ and bench/ (bench never imports tests/: tests/test_layers.py checks), never by the app."""
