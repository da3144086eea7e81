"""Registers a generator name that the built-ins already use."""

from ehrbench import Generator, hookimpl


class AnotherTrainResample(Generator):
    name = "train-resample"

    def fit(self, X_train, ctx):
        self.X = X_train

    def sample(self, n, ctx):
        return self.X[:n]


@hookimpl
def ehrbench_generators():
    return [AnotherTrainResample]
