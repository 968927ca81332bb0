"""Header-field extraction (requirements §8). OWNED BY THE OCR WORK; contract below is fixed."""

from __future__ import annotations

from collections.abc import Sequence

from digitize.models import ExtractedField, FrozenModel, PageOcr


class ExtractSettings(FrozenModel):
    enabled: bool = True
    min_confidence: float = 0.6  # below: field flagged for review


def extract_fields(
    pages: Sequence[PageOcr], settings: ExtractSettings | None = None
) -> tuple[ExtractedField, ...]:
    """Header fields of one component from its pages' OCR."""
    raise NotImplementedError
