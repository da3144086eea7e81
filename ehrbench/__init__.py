"""ehrbench: benchmark generators of synthetic electronic health records.

Plugin authors need :data:`hookimpl` and the base classes re-exported here.
"""

from ehrbench.api import Dataset, Direction, Generator, Metric, PublishedResults, RunContext
from ehrbench.hookspecs import hookimpl
from ehrbench.matrix import EHRMatrix

__version__ = "0.1.0"
__all__ = ["Dataset", "Direction", "EHRMatrix", "Generator", "Metric", "PublishedResults", "RunContext", "hookimpl"]
