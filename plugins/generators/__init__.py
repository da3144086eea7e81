"""Built-in generator plugins."""
