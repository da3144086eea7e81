"""Condition vectors of the conditional VAE: which codes are given, and whether each is present.

A condition is a pair (c, m) over all codes: m_j = 1 when code j is given, c_j = 1 when it is given
as present (c = presence · m). Training reveals, per record, k₁ of its present codes and k₀ of
its absent ones, each k drawn uniformly from 0…``max_given``: the network sees few given codes,
as at generation, where a user names one or a few. Generation gives the requested codes as present.
"""

from __future__ import annotations

import torch


def random_conditions(x: torch.Tensor, max_given: int, generator: torch.Generator) -> torch.Tensor:
    """[c, m] (records × 2·codes) for a CPU batch ``x``: random present and absent codes revealed."""
    present = x > 0
    rows, codes = x.shape
    revealed = torch.zeros_like(present)
    slots = torch.arange(min(max_given, codes))
    for pool in (present, ~present):
        k = torch.randint(0, max_given + 1, (rows, 1), generator=generator)
        scores = torch.rand(rows, codes, generator=generator).masked_fill(~pool, 2.0)
        # The pool's codes with the smallest scores are a uniform random subset of it; keep the first k.
        chosen = scores.topk(len(slots), dim=1, largest=False).indices
        keep = (slots < k) & pool.gather(1, chosen)
        revealed.scatter_(1, chosen, keep | revealed.gather(1, chosen))
    m = revealed.float()
    return torch.cat([present.float() * m, m], dim=1)


def given_present(codes: list[int], n_codes: int) -> torch.Tensor:
    """[c, m] (1 × 2·codes) asking for ``codes`` present, nothing said of the others."""
    m = torch.zeros(1, n_codes)
    m[0, codes] = 1.0
    return torch.cat([m, m], dim=1)


def no_condition(n_codes: int) -> torch.Tensor:
    """[c, m] with nothing given: the conditional VAE's unconditional samples."""
    return torch.zeros(1, 2 * n_codes)
