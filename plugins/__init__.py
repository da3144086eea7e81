"""Built-in ehrbench plugins (installed as ``ehrbench_plugins``)."""
