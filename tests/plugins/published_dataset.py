"""A small real-looking dataset that declares published results, and a second default dataset."""

from __future__ import annotations

import numpy as np

from ehrbench import Dataset, EHRMatrix, PublishedResults, hookimpl

PAPER = PublishedResults(
    source="Example et al. 2024, a made-up table",
    representation="binary",
    values={
        "independent-marginals": {"dimension_wise_probability": 0.0019, "pairwise_correlation_difference": 0.87},
        "not-in-this-run": {"dimension_wise_probability": 0.5},
    },
)


class PublishedDataset(Dataset):
    name = "published-cohort"
    description = "120 seeded patients × 20 codes, with a paper's values attached"
    published = (PAPER,)

    def load(self) -> EHRMatrix:
        X = np.random.default_rng(3).poisson(0.3, size=(120, 20)).astype(np.float32)
        return EHRMatrix(X, [f"c{j}" for j in range(20)])


class AnotherDefault(PublishedDataset):
    name = "another-default"
    default = True


@hookimpl
def ehrbench_datasets():
    return [PublishedDataset, AnotherDefault]
