"""Small iteration helpers shared by the flows and tasks (Python 3.11 has no itertools.batched)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def chunked(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """Consecutive slices of at most `size` items, in order."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
