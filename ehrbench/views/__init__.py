"""Views of a finished run, built from its directory alone: leaderboards, ranks, comparisons, the report."""
