"""The demo model's lab: its training corpus, copy practice, training and evaluation. Not imported by
the app (tests/test_layers.py checks): the runtime only loads the weights (backend/demo/model.py)."""
