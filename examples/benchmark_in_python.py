# %% [markdown]
# # A benchmark from Python: your own generator beside a built-in, a variant and a sweep
#
# Run it as a script (`python examples/benchmark_in_python.py [OUT_DIR] [PROFILE]`) or cell by
# cell in a notebook. It trains the built-in ScoEHR and a generator defined below on the default
# dataset (the simulated cohort unless another is installed as default), reads the leaderboard as
# a pandas DataFrame and writes the self-contained report.

# %%
import sys
from dataclasses import dataclass

import numpy as np

import ehrbench

OUT = sys.argv[1] if len(sys.argv) > 1 else None  # None: runs/<dataset>-<profile>-<time>
PROFILE = sys.argv[2] if len(sys.argv) > 2 else "quick"  # smoke: seconds; quick: minutes; paper: the papers'


# %% [markdown]
# ## A generator defined right here
# No file, no entry point: pass the class to `ehrbench.run`. Options are a frozen dataclass, checked
# by name and type; a ValueError from `__post_init__` becomes a clear error naming the option.


# %%
class ShrunkMarginals(ehrbench.Generator):
    """Every code present independently, at its training prevalence shrunk toward the mean prevalence."""

    name = "shrunk-marginals"
    description = "independent codes at shrunk prevalences (example)"

    @dataclass(frozen=True)
    class Options:
        shrinkage: float = 0.0

        def __post_init__(self):
            if not 0.0 <= self.shrinkage <= 1.0:
                raise ValueError(f"shrinkage must be in [0, 1], got {self.shrinkage}")

    def fit(self, X_train, ctx):
        prevalence = (X_train > 0).mean(axis=0)
        s = self.options.shrinkage
        self.p = (1 - s) * prevalence + s * prevalence.mean()

    def sample(self, n, ctx):
        # ctx.rng: a stream derived from the job's seed. Never numpy's global generator.
        return (ctx.rng("sample").random((n, len(self.p))) < self.p).astype(np.float32)


# %% [markdown]
# ## Check it keeps the contract, then run
# `ehrbench.testing.check_generator` fits and samples it on a small matrix and names any rule it breaks.
# Variants are more rows of a registered generator with other options; a list value is a sweep, one
# row per value, named `NAME-key-value`.

# %%
from ehrbench.testing import check_generator  # noqa: E402

check_generator(ShrunkMarginals)

run = ehrbench.run(
    generators=["scoehr", ShrunkMarginals],
    variants={
        "scoehr-threshold": {"generator": "scoehr", "decode": "threshold"},  # a variant
        "shrunk-marginals": {"shrinkage": [0.25, 0.75]},  # a sweep: shrunk-marginals-shrinkage-0.25, -0.75
    },
    profile=PROFILE,
    repeats=2,
    report=False,  # written below, on demand
    out=OUT,
)

# %% [markdown]
# ## Read the results as pandas

# %%
board = run.leaderboard  # one row per generator × metric: mean, std over repeats, rank
ranked = board[board["rank"].notna()]
print(ranked.pivot_table(index="generator", columns="category", values="rank", aggfunc="mean").round(2))
print(run.manifest["generator_options"]["scoehr-threshold"]["decode"])  # each row's resolved options
per_repeat = run.results  # one row per generator × repeat × metric
print(per_repeat.groupby("generator")["repeat"].nunique())
sample = run.samples("shrunk-marginals-shrinkage-0.25", repeat=0)  # an EHRMatrix, read on demand
print(sample.X.shape, sample.codes[:3])

# %%
print("report:", run.report())
