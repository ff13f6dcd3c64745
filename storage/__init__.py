"""Storage: SQLAlchemy schema, Alembic migrations and the repository (plain Python, no Gradio)."""
