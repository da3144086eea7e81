"""Returns things that are not valid plugin classes."""

from ehrbench import Metric, hookimpl


class BadName(Metric):
    name = "Bad-Name"
    category = "fidelity"
    higher_is_better = False

    def compute(self, real_train, real_test, synthetic, ctx):
        return {"value": 0.0}


class NotAMetric:
    name = "not_a_metric"


@hookimpl
def ehrbench_metrics():
    return [BadName, NotAMetric]
