"""The bundled demo model: a tiny GptOss taught to answer simple tasks in harmony."""
