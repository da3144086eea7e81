"""The ScoEHR paper's published results on MIMIC-III, which the report shows beside a run's own.

Values as printed in the paper (DWP, PCD, log-cluster, SRA); never computed here. They are
declared as ``Mimic3Dataset.published``, so only runs on the real MIMIC-III files show them.
"""

from __future__ import annotations

from ehrbench import PublishedResults

_METRICS = (
    "dimension_wise_probability",
    "pairwise_correlation_difference",
    "log_cluster",
    "synthetic_ranking_agreement",
)

SCOEHR_PAPER = PublishedResults(
    source=(
        "Naseer et al., \"ScoEHR: Generating Synthetic Electronic Health Records using Continuous-time "
        "Diffusion Models\", MLHC 2023 — MIMIC-III, binary ICD-9 groups"
    ),
    representation="binary",
    values={
        "medgan": dict(zip(_METRICS, (0.0019, 120.0, -2.9, 0.83))),
        "medbgan": dict(zip(_METRICS, (0.0016, 146.0, -3.2, 0.86))),
        "medwgan": dict(zip(_METRICS, (0.0025, 22.1, -5.4, 0.81))),
        "scoehr": dict(zip(_METRICS, (0.0029, 21.8, -6.0, 0.87))),
    },
)
