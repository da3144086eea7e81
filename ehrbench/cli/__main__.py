"""``python -m ehrbench.cli``: the same as the ``ehrbench`` command."""

from ehrbench.cli.main import main

main()
