"""Generator classes the registry must refuse with a reason: no sample(), a name that is not a plain
string, a name that would lead outside the run directory."""

from __future__ import annotations

from ehrbench import Generator, hookimpl


class NoSample(Generator):
    name = "no-sample"

    def fit(self, X_train, ctx):
        pass


class SneakyName(str):
    """Matches the name pattern, but prints as a path that climbs out of samples/."""

    def __str__(self) -> str:
        return "../../escaped"

    def __format__(self, spec: str) -> str:
        return "../../escaped"


class Sneaky(Generator):
    name = SneakyName("sneaky")

    def fit(self, X_train, ctx):
        pass

    def sample(self, n, ctx):
        raise AssertionError("never registered")


class Climbs(Generator):
    name = "../climbs"

    def fit(self, X_train, ctx):
        pass

    def sample(self, n, ctx):
        raise AssertionError("never registered")


@hookimpl
def ehrbench_generators():
    return [NoSample, Sneaky, Climbs]
