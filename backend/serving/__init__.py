"""Serving: the inference worker, the model host, answers being written and their periodic saves."""
