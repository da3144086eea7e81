"""``python -m ehrbench``: the same as the ``ehrbench`` command."""

from ehrbench.cli.app import main

if __name__ == "__main__":
    main()
