"""Tools gpt-oss may call: built-in python and browser, and developer functions."""
