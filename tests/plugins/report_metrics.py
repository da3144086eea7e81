"""Test metrics for the report: a privacy and a utility number, so every leaderboard category exists
without depending on plugins that may be absent."""

import numpy as np

from ehrbench import Metric, hookimpl


class CopiedRowShare(Metric):
    name = "copied_row_share"
    category = "privacy"
    higher_is_better = False
    default = False
    description = "share of synthetic rows that equal some training row"

    def compute(self, real_train, real_test, synthetic, ctx):
        equal = (synthetic.X[:, None, :] == real_train.X[None, :, :]).all(axis=2)  # tiny test matrices only
        return {"value": float(equal.any(axis=1).mean())}


class PrevalenceAgreement(Metric):
    name = "prevalence_agreement"
    category = "utility"
    higher_is_better = True
    default = False
    description = "1 − mean absolute prevalence difference to the train split"

    def compute(self, real_train, real_test, synthetic, ctx):
        p_t = (real_train.X > 0).mean(axis=0)
        p_s = (synthetic.X > 0).mean(axis=0)
        return {"value": float(1 - np.abs(p_t - p_s).mean())}


@hookimpl
def ehrbench_metrics():
    return [CopiedRowShare, PrevalenceAgreement]
