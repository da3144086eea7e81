"""A plugin that calls sys.exit() while it is imported: `ehrbench list` must report it as broken."""

import sys

sys.exit("this plugin refuses to load")
