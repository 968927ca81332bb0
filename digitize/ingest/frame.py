"""What ingest knows about one page image before its pixels are decoded."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np

from digitize.ingest.dpi import DpiDecision
from digitize.models import Flag, SourceEncoding

CaptureSource = Literal["exif", "tiff", "pdf", "file_mtime"]
Rotation = Literal[0, 90, 180, 270]


@dataclass(frozen=True)
class DisplayTransform:
    """How stored pixels become the page as displayed: an optional left-right mirror, then a
    clockwise turn by ``rotation_deg``. The identity for every raster file."""

    rotation_deg: Rotation = 0
    mirrored: bool = False

    @property
    def is_identity(self) -> bool:
        return self.rotation_deg == 0 and not self.mirrored

    @property
    def swaps_axes(self) -> bool:
        return self.rotation_deg in (90, 270)

    def apply(self, arr: np.ndarray) -> np.ndarray:
        """The displayed page of a stored HxW or HxWxC array (a view when possible)."""
        if self.mirrored:
            arr = arr[:, ::-1]
        if self.rotation_deg:
            arr = np.rot90(arr, k=-(self.rotation_deg // 90), axes=(0, 1))
        return arr

    def describe(self) -> str:
        turn = f"turned {self.rotation_deg}° clockwise" if self.rotation_deg else "not turned"
        return f"mirrored left-right, then {turn}" if self.mirrored else turn


IDENTITY = DisplayTransform()


@dataclass
class FrameInfo:
    """One page image inside a source file, as read from headers (pixels not yet decoded).

    ``width``/``height``/``file_dpi`` describe the page as displayed (after ``transform``)."""

    frame: int
    encoding: SourceEncoding
    width: int
    height: int
    file_dpi: tuple[float, float] | None
    captured_at: datetime | None = None
    captured_at_source: CaptureSource | None = None
    lossy: bool = False
    flags: list[Flag] = field(default_factory=list)
    decision: DpiDecision | None = None
    transform: DisplayTransform = IDENTITY
