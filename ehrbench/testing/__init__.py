"""The conformance kit for plugin authors: ``check_generator(cls)`` and ``check_metric(cls)``.

In the spirit of scikit-learn's ``check_estimator``: each check runs a class through the contract a
run relies on (DESIGN.md §3) on a small matrix made here, and raises :class:`ConformanceError`
naming the first rule broken. Our own test suite runs them over every registered built-in.
"""

from ehrbench.testing.checks import ConformanceError, check_generator, check_metric, toy_matrix

__all__ = ["ConformanceError", "check_generator", "check_metric", "toy_matrix"]
