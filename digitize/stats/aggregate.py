"""Grouping counted bundles into the report's rows, and the settlement (quyết toán) table.

Rules (the contract of the figures)
    * Copies: bundles with the same signed manifest (same SHA-256 — a folder and its ``.zip``,
      a backup copy) are one bundle, counted once (the folder, else the first path); the
      others are listed as copies. Copying a folder must not double a payment.
    * Redone: bundles of the same ``dossier_code`` (different manifests) are one dossier
      digitised more than once. The one with the earliest ``created_at`` (ties: manifest hash)
      is the original; each later one is *redone* — it replaces the earlier as the current
      version. Decided over every verified bundle found, before the date filter, so a re-do in
      February of a January dossier is a re-do in a February-only report too.
    * Period: ``--from``/``--to`` are inclusive dates of the work date (``created_at`` in
      Vietnam time).
    * ``dossiers`` counts bundles (re-dos included: work done); ``redone`` says how many of
      them are re-dos. Every other measure covers every counted bundle.
    * ``needs_review``: bundles whose manifest says ``needs_review``; the share is over
      ``dossiers``. ``ocr_mean_confidence``: mean over images. Scan-to-signature: median
      (mean of the two middle values for an even count) and p90 by nearest rank (the
      ⌈0.9·n⌉-th smallest) over signed documents, in seconds.
    * Group keys: ``digitiser`` = the certificate's full name (a renewed certificate keeps the
      person in one group); ``office`` = ``receiving_organ_id`` (the receiving agency's code,
      ND 30 PL VI), or ``profile:<name>`` when a manifest has none; ``procedure`` =
      ``procedure_code`` or ``(none)``; ``day`` = the work date; ``month`` = ``YYYY-MM``.

Settlement
    Per office and month: quantities of the *paid* bundles (re-dos only when
    ``stats.rates.pay_redone``) — dossiers, and pages per size on ``stats.rates.page_basis``
    (images or physical pages) — times the profile's unit rates. Each amount is
    ``quantity × rate`` in ``Decimal``, rounded once to a whole đồng, half up (ROUND_HALF_UP);
    a line's total, an office's subtotal and the grand total are sums of those rounded
    amounts, so the table adds up exactly as printed. No rate is built in: an item with a
    quantity and no configured rate has no amount, its line and the totals stay empty, and the
    settlement lists the missing rates.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal, get_args

from digitize.models import FrozenModel
from digitize.settings import Rate, StatsRates
from digitize.stats.collect import Counted
from digitize.stats.facts import BundleFacts

GroupKey = Literal["digitiser", "office", "procedure", "day", "month"]
GROUP_KEYS: tuple[GroupKey, ...] = get_args(GroupKey)
NO_PROCEDURE = "(none)"
ALL = "(all)"
RATE_ITEMS = ("per_dossier", "a4", "a3", "other")
ROUNDING = "each amount rounded to a whole đồng, half up; totals are sums of rounded amounts"

KeyValue = str | date


class StatsRow(FrozenModel):
    """One group's measures (the stable columns of CSV and JSON, in this order)."""

    group: str
    keys: tuple[tuple[str, KeyValue], ...] = ()
    dossiers: int = 0
    redone: int = 0
    components: int = 0
    not_digitised: int = 0
    pages: int = 0
    images: int = 0
    note_slip_images: int = 0
    pages_a4: int = 0
    pages_a3: int = 0
    pages_other: int = 0
    images_a4: int = 0
    images_a3: int = 0
    images_other: int = 0
    images_colour: int = 0
    images_gray: int = 0
    images_bilevel: int = 0
    needs_review: int = 0
    needs_review_share: float | None = None
    reviewed_fields: int = 0
    ocr_mean_confidence: float | None = None
    signed_documents: int = 0
    scan_to_signature_median_s: float | None = None
    scan_to_signature_p90_s: float | None = None


MEASURES: tuple[str, ...] = tuple(n for n in StatsRow.model_fields if n not in ("group", "keys"))
_SUMMED = tuple(n for n in MEASURES if StatsRow.model_fields[n].annotation is int)


class Grouping(FrozenModel):
    by: tuple[GroupKey, ...]
    rows: tuple[StatsRow, ...]
    total: StatsRow


class SettlementLine(FrozenModel):
    office: str
    month: str  # YYYY-MM; "" on an office's subtotal and on the grand total
    dossiers: int
    redone_unpaid: int
    pages_a4: int
    pages_a3: int
    pages_other: int
    amount_dossiers: Decimal | None
    amount_a4: Decimal | None
    amount_a3: Decimal | None
    amount_other: Decimal | None
    total: Decimal | None


class Settlement(FrozenModel):
    currency: str
    page_basis: Literal["images", "physical"]
    pay_redone: bool
    rates: dict[str, Rate | None]
    missing_rates: tuple[str, ...]  # items with a quantity and no configured rate
    lines: tuple[SettlementLine, ...]  # per office: its months, then its subtotal (month "")
    total: SettlementLine
    rounding: str = ROUNDING


class ChartData(FrozenModel):
    pages_per_day: dict[str, dict[date, int]]  # digitiser → work date → physical pages
    review: dict[str, tuple[int, int]]  # digitiser → (bundles needing review, bundles)
    scan_to_signature_s: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Bundle:
    """A counted bundle with what the aggregation decided about it."""

    path: str
    facts: BundleFacts
    redone: bool


def dedupe_and_mark(counted: Sequence[Counted]) -> tuple[list[Bundle], list[tuple[str, str]]]:
    """One bundle per manifest hash (folders first), each marked redone or not; returns the
    bundles and the ``(path, copy of)`` pairs left out."""
    first: dict[str, Counted] = {}
    copies: list[tuple[str, str]] = []
    for item in sorted(counted, key=lambda c: (c.is_zip, c.path)):
        kept = first.get(item.facts.manifest_sha256)
        if kept is None:
            first[item.facts.manifest_sha256] = item
        else:
            copies.append((item.path, kept.path))
    by_code: dict[str, list[Counted]] = defaultdict(list)
    for item in first.values():
        by_code[item.facts.dossier_code].append(item)
    bundles: list[Bundle] = []
    for items in by_code.values():
        items.sort(key=lambda c: (c.facts.created_at, c.facts.manifest_sha256))
        bundles.extend(Bundle(c.path, c.facts, i > 0) for i, c in enumerate(items))
    bundles.sort(key=lambda b: (b.facts.created_at, b.path))
    copies.sort()
    return bundles, copies


def in_period(bundles: Iterable[Bundle], start: date | None, end: date | None) -> list[Bundle]:
    return [b for b in bundles
            if (start is None or b.facts.work_date >= start)
            and (end is None or b.facts.work_date <= end)]


def office_of(facts: BundleFacts) -> str:
    return facts.receiving_organ_id or f"profile:{facts.profile}"


def key_value(facts: BundleFacts, key: GroupKey) -> KeyValue:
    if key == "digitiser":
        return facts.digitiser
    if key == "office":
        return office_of(facts)
    if key == "procedure":
        return facts.procedure_code or NO_PROCEDURE
    if key == "day":
        return facts.work_date
    return facts.work_date.strftime("%Y-%m")


def group_label(values: Sequence[KeyValue]) -> str:
    return " / ".join(v.isoformat() if isinstance(v, date) else v for v in values) or ALL


def percentile_nearest_rank(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


class _Acc:
    """Running sums of one group."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(_SUMMED, 0)
        self.conf_sum = 0.0
        self.conf_n = 0
        self.durations: list[float] = []

    def add(self, bundle: Bundle, tolerance: float) -> None:
        f, c = bundle.facts, self.counts
        c["dossiers"] += 1
        c["redone"] += bundle.redone
        c["components"] += f.components
        c["not_digitised"] += f.not_digitised
        c["pages"] += f.pages
        c["images"] += f.images
        c["note_slip_images"] += f.images - f.pages
        for basis, prefix in (("physical", "pages_"), ("images", "images_")):
            for name, n in f.pages_by_class(tolerance, basis).items():  # type: ignore[arg-type]
                c[prefix + name.lower()] += n
        c["images_colour"] += f.images_colour
        c["images_gray"] += f.images_gray
        c["images_bilevel"] += f.images_bilevel
        c["needs_review"] += f.needs_review
        c["reviewed_fields"] += f.reviewed_fields
        c["signed_documents"] += len(f.scan_to_signature_s)
        self.conf_sum += f.ocr_confidence_sum
        self.conf_n += f.ocr_confidence_images
        self.durations.extend(f.scan_to_signature_s)

    def row(self, group: str, keys: tuple[tuple[str, KeyValue], ...]) -> StatsRow:
        c = self.counts
        return StatsRow(
            group=group, keys=keys, **c,
            needs_review_share=round(c["needs_review"] / c["dossiers"], 4) if c["dossiers"]
            else None,
            ocr_mean_confidence=round(self.conf_sum / self.conf_n, 2) if self.conf_n else None,
            scan_to_signature_median_s=round(statistics.median(self.durations), 1)
            if self.durations else None,
            scan_to_signature_p90_s=round(percentile_nearest_rank(self.durations, 0.9), 1)
            if self.durations else None,
        )


def group(bundles: Sequence[Bundle], by: Sequence[GroupKey], tolerance: float) -> Grouping:
    """Rows per combination of ``by`` values (sorted), and the total over all bundles."""
    accs: dict[tuple[KeyValue, ...], _Acc] = {}
    total = _Acc()
    for bundle in bundles:
        values = tuple(key_value(bundle.facts, k) for k in by)
        accs.setdefault(values, _Acc()).add(bundle, tolerance)
        total.add(bundle, tolerance)
    rows = tuple(acc.row(group_label(values), tuple(zip(by, values, strict=True)))
                 for values, acc in sorted(accs.items(), key=lambda kv: _sort_key(kv[0])))
    return Grouping(by=tuple(by), rows=rows, total=total.row(ALL, ()))


def _sort_key(values: tuple[KeyValue, ...]) -> tuple[str, ...]:
    return tuple(v.isoformat() if isinstance(v, date) else v.casefold() for v in values)


def chart_data(bundles: Sequence[Bundle]) -> ChartData:
    per_day: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    review: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    durations: list[float] = []
    for b in bundles:
        per_day[b.facts.digitiser][b.facts.work_date] += b.facts.pages
        review[b.facts.digitiser][0] += b.facts.needs_review
        review[b.facts.digitiser][1] += 1
        durations.extend(b.facts.scan_to_signature_s)
    return ChartData(
        pages_per_day={name: dict(sorted(days.items())) for name, days in sorted(per_day.items())},
        review={name: (v[0], v[1]) for name, v in sorted(review.items())},
        scan_to_signature_s=tuple(durations),
    )


def _amount(quantity: int, rate: Rate | None) -> Decimal | None:
    if rate is None:
        return None if quantity else Decimal(0)
    return (rate.amount * quantity).quantize(Decimal(1), rounding=ROUND_HALF_UP)


def _line(office: str, month: str, quantities: dict[str, int], redone_unpaid: int,
          rates: StatsRates) -> SettlementLine:
    amounts = {item: _amount(quantities[item], getattr(rates, item)) for item in RATE_ITEMS}
    known = [a for a in amounts.values() if a is not None]
    return SettlementLine(
        office=office, month=month, dossiers=quantities["per_dossier"],
        redone_unpaid=redone_unpaid, pages_a4=quantities["a4"], pages_a3=quantities["a3"],
        pages_other=quantities["other"], amount_dossiers=amounts["per_dossier"],
        amount_a4=amounts["a4"], amount_a3=amounts["a3"], amount_other=amounts["other"],
        total=sum(known, Decimal(0)) if len(known) == len(amounts) else None,
    )


def _sum_lines(office: str, lines: Sequence[SettlementLine]) -> SettlementLine:
    def add(name: str) -> Decimal | None:
        values = [getattr(line, name) for line in lines]
        return None if any(v is None for v in values) else sum(values, Decimal(0))

    return SettlementLine(
        office=office, month="", dossiers=sum(x.dossiers for x in lines),
        redone_unpaid=sum(x.redone_unpaid for x in lines),
        pages_a4=sum(x.pages_a4 for x in lines), pages_a3=sum(x.pages_a3 for x in lines),
        pages_other=sum(x.pages_other for x in lines), amount_dossiers=add("amount_dossiers"),
        amount_a4=add("amount_a4"), amount_a3=add("amount_a3"),
        amount_other=add("amount_other"), total=add("total"),
    )


def settlement(bundles: Sequence[Bundle], rates: StatsRates, tolerance: float) -> Settlement:
    """The settlement table (see the module docstring)."""
    quantities: dict[tuple[str, str], dict[str, int]] = {}
    unpaid: dict[tuple[str, str], int] = defaultdict(int)
    for b in bundles:
        cell = (office_of(b.facts), b.facts.work_date.strftime("%Y-%m"))
        q = quantities.setdefault(cell, dict.fromkeys(RATE_ITEMS, 0))
        if b.redone and not rates.pay_redone:
            unpaid[cell] += 1
            continue
        q["per_dossier"] += 1
        for name, n in b.facts.pages_by_class(tolerance, rates.page_basis).items():
            q[name.lower()] += n
    lines: list[SettlementLine] = []
    subtotals: list[SettlementLine] = []
    offices = sorted({office for office, _ in quantities}, key=str.casefold)
    for office in offices:
        months = [_line(office, month, quantities[(office, month)], unpaid[(office, month)],
                        rates)
                  for o, month in sorted(quantities) if o == office]
        subtotal = _sum_lines(office, months)
        lines.extend([*months, subtotal])
        subtotals.append(subtotal)
    total = _sum_lines(ALL, subtotals)
    missing = tuple(item for item in RATE_ITEMS
                    if getattr(rates, item) is None
                    and any(q[item] for q in quantities.values()))
    return Settlement(
        currency=rates.currency, page_basis=rates.page_basis, pay_redone=rates.pay_redone,
        rates={item: getattr(rates, item) for item in RATE_ITEMS}, missing_rates=missing,
        lines=tuple(lines), total=total,
    )
