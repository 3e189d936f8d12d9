"""The MPI's services: they take a unit of work (or its factory), return plain values."""

from medmatch.mpi.services.golden import ChangeReport, GoldenRecordService, GoldenView
from medmatch.mpi.services.matching import LookupResult, MatchingService
from medmatch.mpi.services.review import Resolved, ReviewService

__all__ = [
    "ChangeReport",
    "GoldenRecordService",
    "GoldenView",
    "LookupResult",
    "MatchingService",
    "Resolved",
    "ReviewService",
]
