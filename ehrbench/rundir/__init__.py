"""The run directory: its layout, ``run.json``, the append-only ``results.jsonl``, reference aggregates."""
