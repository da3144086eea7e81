"""A plugin whose import fails: it must show as broken, and nothing else may break."""

import ehrbench_this_module_does_not_exist  # noqa: F401
