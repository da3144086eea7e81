"""A plugin that fails at import with text that looks like markup."""

raise ImportError("cannot find [/opt/lib] [red]")
