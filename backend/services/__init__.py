"""Services the page and the APIs call: chats, conversations, the turn pipeline, the agent loop, settings, reasoning policy."""
