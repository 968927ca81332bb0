"""The station a job runs on: its folders, trust roots, and what a caller may lend it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from digitize.profiles import Profile
from digitize.sign import DigitiserSigner
from digitize.verify import default_trust_roots


@dataclass(frozen=True)
class StationOptions:
    """Local resources a caller of ``batch_run``/``InboxWatcher`` may supply instead of the
    defaults: an open signer (not closed by the callee), the data folder of the demo identity,
    the trust roots new and existing bundles are verified against."""

    signer: DigitiserSigner | None = None
    data_dir: Path | None = None
    trust_roots: tuple[Path, ...] | None = None  # None: ``trust_roots_for(profile)``


def paths_overlap(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` are the same folder or one lies inside the other."""
    ra, rb = Path(os.path.realpath(a)), Path(os.path.realpath(b))
    return ra == rb or ra in rb.parents or rb in ra.parents


def trust_roots_for(profile: Profile) -> tuple[Path, ...]:
    """What new bundles are verified against: ``DIGITIZE_TRUST_ROOTS``, the local demo root
    when it exists, and the profile's ``sign.trust_roots``. Looked up at each call: the demo
    root appears when the demo signer is first opened."""
    return tuple(default_trust_roots()) + tuple(Path(p) for p in profile.sign.trust_roots)


__all__ = ["StationOptions", "paths_overlap", "trust_roots_for"]
