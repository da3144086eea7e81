"""Placeholder registered in pyproject.toml; its issue fills it in."""
