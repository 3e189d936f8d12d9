"""MedMatch's exceptions.

Messages name fields and reasons, never values: a value may be protected health information.
"""

from __future__ import annotations


class MedMatchError(Exception):
    """Base class of every error MedMatch raises on purpose."""


class InvalidValueError(MedMatchError, ValueError):
    """A single value could not be normalised. The message is a reason, never the value."""


class InvalidFieldError(MedMatchError, ValueError):
    """A record field holds a value that cannot be used."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InputFileError(MedMatchError):
    """An input file is missing, unreadable or lacks a required column."""


class ModelError(MedMatchError):
    """A match model file is missing, malformed or does not fit this version of MedMatch."""


class NotFoundError(MedMatchError, LookupError):
    """A golden record, source record or review item that does not exist."""

    def __init__(self, kind: str, identifier: object) -> None:
        super().__init__(f"{kind} {identifier} not found")
        self.kind = kind
        self.identifier = identifier


class ConflictError(MedMatchError):
    """The request contradicts the stored state (an item held by another reviewer, a merge
    of a record already merged)."""
