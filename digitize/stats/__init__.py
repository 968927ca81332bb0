"""Supervision and settlement statistics over signed bundles (``digitize stats``).

Who digitised what, where, for which procedures, how well and how fast, and what it costs:
counted from the bundles themselves, and only from bundles that verify — a figure used for
payment must not be forgeable by editing ``manifest.json``.

    find (folders and zips) → verify, or reuse the verdict of an unchanged bundle (index)
    → facts per verified manifest → copies and re-dos → groups, settlement, charts

``build_report(StatsRequest(...))`` returns a ``StatsReport``; ``digitize.stats.export``
writes CSV, JSON and XLSX, ``digitize.stats.html`` the HTML report. Definitions of every
figure: ``digitize.stats.facts`` and ``digitize.stats.aggregate``; the index and its trust
argument: ``digitize.stats.index``. ``fields_corrected_by_person`` is the one place that
decides what a person's correction is.
"""

from digitize.stats.aggregate import GROUP_KEYS, Grouping, GroupKey, Settlement, StatsRow
from digitize.stats.collect import TrustOptions, stats_trust_roots
from digitize.stats.facts import BundleFacts, fields_corrected_by_person, paper_class
from digitize.stats.index import default_index_path
from digitize.stats.report import UNVERIFIED_BANNER, StatsReport, StatsRequest, build_report

__all__ = [
    "GROUP_KEYS",
    "UNVERIFIED_BANNER",
    "BundleFacts",
    "GroupKey",
    "Grouping",
    "Settlement",
    "StatsReport",
    "StatsRequest",
    "StatsRow",
    "TrustOptions",
    "build_report",
    "default_index_path",
    "fields_corrected_by_person",
    "paper_class",
    "stats_trust_roots",
]
