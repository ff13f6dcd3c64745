"""Config, errors, events and records shared by every layer; imports nothing of ours."""
