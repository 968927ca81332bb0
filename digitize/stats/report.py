"""``build_report``: from paths to a ``StatsReport`` (find → verify/reuse → aggregate).

The report is a typed, frozen model; the CLI and the writers (CSV, JSON, XLSX, HTML) only
render it. It carries whether its figures were verified: with ``verify=False`` every
rendering shows ``UNVERIFIED_BANNER``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from digitize._version import __version__
from digitize.errors import ExitCode
from digitize.models import FrozenModel
from digitize.settings import StatsSettings
from digitize.stats.aggregate import (
    ChartData,
    Grouping,
    GroupKey,
    Settlement,
    chart_data,
    dedupe_and_mark,
    group,
    in_period,
    settlement,
)
from digitize.stats.collect import (
    CollectOptions,
    Excluded,
    ProgressCallback,
    TrustOptions,
    collect,
)
from digitize.stats.index import StatsIndex, find_bundles
from digitize.util import vn_now

UNVERIFIED_BANNER = (
    "CHƯA XÁC MINH — UNVERIFIED: figures read from manifest.json without verifying the "
    "signatures (--no-verify). Anyone can edit a manifest: not valid for payment."
)
DEMO_EXCLUDED = "signed with the DEMO identity: not counted without --allow-demo"


class ExcludedBundle(FrozenModel):
    path: str
    reason: str
    exit_code: int


class CopyBundle(FrozenModel):
    path: str
    copy_of: str  # the counted bundle with the same signed manifest


class StatsReport(FrozenModel):
    generated_at: datetime
    tool_version: str
    verified: bool
    allow_demo: bool
    trust_roots_sha256: tuple[str, ...]
    period_from: date | None
    period_to: date | None
    paper_tolerance: float
    groupings: tuple[Grouping, ...]  # [0]: the requested keys; then one per key when several
    settlement: Settlement
    charts: ChartData
    excluded: tuple[ExcludedBundle, ...]
    copies: tuple[CopyBundle, ...]
    demo_bundles: int  # counted bundles signed with a demo identity (only with allow_demo)
    bundles_found: int
    verified_now: int
    reused_verdicts: int

    @property
    def banner(self) -> str | None:
        return None if self.verified else UNVERIFIED_BANNER

    @property
    def main(self) -> Grouping:
        return self.groupings[0]


@dataclass(frozen=True)
class StatsRequest:
    """What to count and how (one context object, see ``build_report``)."""

    paths: tuple[Path, ...]
    trust: TrustOptions
    by: tuple[GroupKey, ...] = ()
    date_from: date | None = None
    date_to: date | None = None
    settings: StatsSettings = field(default_factory=StatsSettings)
    verify: bool = True
    index_path: Path | None = None  # None: no index (every bundle verified every time)
    reverify: bool = False
    workers: int = 0  # 0: settings.workers, else usable cores
    on_progress: ProgressCallback | None = None


def build_report(request: StatsRequest) -> StatsReport:
    """Count the bundles under ``request.paths`` (see ``digitize.stats`` for the rules)."""
    refs = find_bundles(request.paths)
    index = StatsIndex(request.index_path) if request.index_path is not None else None
    try:
        collected = collect(refs, CollectOptions(
            trust=request.trust, verify=request.verify, index=index, reverify=request.reverify,
            workers=request.workers or request.settings.workers,
            scanned_roots=tuple(os.path.abspath(p) for p in request.paths),
            on_progress=request.on_progress,
        ))
    finally:
        if index is not None:
            index.close()
    excluded = list(collected.excluded)
    counted = []
    for item in collected.counted:
        if item.facts.digitiser_is_demo and not request.trust.allow_demo:
            excluded.append(Excluded(item.path, DEMO_EXCLUDED, int(ExitCode.VERIFY_TRUST)))
        else:
            counted.append(item)
    bundles, copies = dedupe_and_mark(counted)
    chosen = in_period(bundles, request.date_from, request.date_to)
    tolerance = request.settings.paper_tolerance
    keys = _unique(request.by)
    groupings = [group(chosen, keys, tolerance)]
    if len(keys) > 1:
        groupings += [group(chosen, (k,), tolerance) for k in keys]
    return StatsReport(
        generated_at=vn_now().replace(microsecond=0),
        tool_version=__version__,
        verified=request.verify,
        allow_demo=request.trust.allow_demo,
        trust_roots_sha256=tuple(sorted(hashlib.sha256(Path(r).read_bytes()).hexdigest()
                                        for r in request.trust.roots)),
        period_from=request.date_from,
        period_to=request.date_to,
        paper_tolerance=tolerance,
        groupings=tuple(groupings),
        settlement=settlement(chosen, request.settings.rates, tolerance),
        charts=chart_data(chosen),
        excluded=tuple(ExcludedBundle(path=e.path, reason=e.reason, exit_code=e.exit_code)
                       for e in sorted(excluded, key=lambda e: e.path)),
        copies=tuple(CopyBundle(path=p, copy_of=c) for p, c in copies),
        demo_bundles=sum(b.facts.digitiser_is_demo for b in chosen),
        bundles_found=len(refs),
        verified_now=collected.verified_now,
        reused_verdicts=collected.reused,
    )


def _unique(keys: Sequence[GroupKey]) -> tuple[GroupKey, ...]:
    return tuple(dict.fromkeys(keys))
