"""ehrbench as a library: the functions ``ehrbench.run``, ``ehrbench.evaluate`` and ``ehrbench.load_run``."""
