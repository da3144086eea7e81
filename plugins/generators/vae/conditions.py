"""Condition vectors of the conditional VAE: which codes are given, and whether each is present.

A condition is a pair (c, m) over all codes: m_j = 1 when code j is given, c_j = 1 when it is given
as present (c = presence · m). Training draws m independently of the record (each code given with a
rate r ~ U(0, 1) drawn per record): conditioning on c_j = m_j = 1 alone is then exactly
p(x | code j present), since which codes are given says nothing about the record, and every
number of given codes, one among a thousand included, occurs in training. (Masks that depend on
the record, such as some of its present codes, leak its length: measured, records given heart
failure, 428, had 4.5 or 9.6 codes where the real ones have 24.) Generation gives the requested
codes as present and says nothing about the others.
"""

from __future__ import annotations

import torch


def random_conditions(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """[c, m] (records × 2·codes) for a CPU batch ``x``: codes given at random, independently of ``x``."""
    rows, codes = x.shape
    rate = torch.rand(rows, 1, generator=generator)
    m = (torch.rand(rows, codes, generator=generator) < rate).float()
    return torch.cat([(x > 0).float() * m, m], dim=1)


def given_present(codes: list[int], n_codes: int) -> torch.Tensor:
    """[c, m] (1 × 2·codes) asking for ``codes`` present, nothing said of the others."""
    m = torch.zeros(1, n_codes)
    m[0, codes] = 1.0
    return torch.cat([m, m], dim=1)


def no_condition(n_codes: int) -> torch.Tensor:
    """[c, m] with nothing given: the conditional VAE's unconditional samples."""
    return torch.zeros(1, 2 * n_codes)
