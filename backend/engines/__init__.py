"""Engines: the interface (base), the one place that chooses (choose), and the engines themselves."""
