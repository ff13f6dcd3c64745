"""What the server prints: our own INFO lines, and only warnings from the libraries.

A start should read like a short story a person can follow (database ready, model loading,
model ready), not like the libraries' set-up chatter.
"""

from __future__ import annotations

import logging

# Library loggers whose INFO lines say nothing a person running the app needs: Alembic's plugin
# set-up, Gradio's own start-up probes through httpx, transformers' continuous-batching settings.
QUIET = ("alembic", "httpx", "ContinuousBatchingLogger")


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
