"""CPU thread control for torch generators, without leaking a process-global setting.

``torch.set_num_threads`` changes the whole process (metrics, other jobs of a local run).
A generator therefore sets the count it was asked for only for the duration of its own fit or
sample and restores the previous value afterwards, even when training raises. Asked for 0, it
leaves torch's own setting alone: torch's default (one thread per physical core) honours
``OMP_NUM_THREADS``, which is how a shared machine is usually told to use fewer threads.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def torch_threads(threads: int) -> Iterator[int]:
    """Run the block with ``threads`` intra-op threads (0: torch's current setting); yields the count."""
    import torch

    previous = torch.get_num_threads()
    wanted = threads if threads > 0 else previous
    if wanted != previous:
        torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)
