"""Helpers the tests share: tiny model, forced output, replay server, threads, page selectors."""
