"""``python -m ehrbench.cli``: the same as the ``ehrbench`` command."""

from ehrbench.cli.app import main

main()
