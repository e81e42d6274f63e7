"""Typed errors raised on bad input. Every message names the bad value and what is allowed."""

from __future__ import annotations


class ArtemisInputError(ValueError):
    """Base class for bad user input (a 4xx in the service, never a crash)."""


class InvalidBoxError(ArtemisInputError):
    """A box that is NaN/inf, inverted, of zero area or entirely outside the frame."""


class FrameIndexError(ArtemisInputError, IndexError):
    """A frame index outside ``[0, num_frames)``."""


class VideoDecodeError(ArtemisInputError):
    """A video that is missing, empty, unreadable or corrupt."""


class NotAnArtemisModelError(ArtemisInputError):
    """A directory that does not hold an Artemis model."""
