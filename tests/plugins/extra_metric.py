"""A third-party metric in one file: the share of synthetic rows with no code at all."""

from ehrbench import Metric, hookimpl


class EmptyRecordShare(Metric):
    name = "empty_record_share"
    category = "fidelity"
    higher_is_better = False
    description = "share of synthetic records with no code"

    def compute(self, real_train, real_test, synthetic, ctx):
        return {"value": float((synthetic.X.sum(axis=1) == 0).mean())}


class Exploding(Metric):
    name = "exploding"
    category = "fidelity"
    higher_is_better = False
    default = False

    def compute(self, real_train, real_test, synthetic, ctx):
        raise ValueError("this metric always fails")


@hookimpl
def ehrbench_metrics():
    return [EmptyRecordShare, Exploding]
