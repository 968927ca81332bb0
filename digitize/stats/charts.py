"""The report's pictures, drawn by matplotlib (no pyplot, no GUI backend) as SVG text.

Each chart must stay readable printed in black and white: series differ by marker, line
style and gray level, bars by hatch pattern, reference lines by dash pattern and a legend —
never by colour alone. The SVG keeps its text as text (``svg.fonttype: none``) so it prints
sharply and stays small; ids are salted per chart so several charts can share one page.
"""

from __future__ import annotations

import io
import math
import statistics
from collections.abc import Sequence
from datetime import date
from typing import Any

from digitize.errors import ConfigError
from digitize.stats.aggregate import ChartData, percentile_nearest_rank

MARKERS = ("o", "s", "^", "D", "v", "x", "P", "*")
LINESTYLES = ("-", "--", ":", "-.")
GRAYS = ("0.0", "0.45", "0.25", "0.6")
HATCHES = ("//", "\\\\", "xx", "..", "--", "++", "oo", "||")


def require_matplotlib() -> None:
    """Raise ``ConfigError`` (with the install hint) when the ``stats`` extra is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError("--html needs matplotlib", hint="pip install 'digitize[stats]'") from None


def _figure(width: float, height: float) -> Any:
    require_matplotlib()
    from matplotlib.figure import Figure

    # Figure without pyplot: no global figure registry, no GUI backend, safe in threads.
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _svg(fig: Any, salt: str) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype: it sits inside HTML


def pages_per_day_chart(data: ChartData) -> str | None:
    """Physical pages per work day, one line per digitiser (marker + dash + gray level)."""
    if not data.pages_per_day:
        return None
    fig = _figure(8.0, 3.4)
    ax = fig.add_subplot()
    days = sorted({d for series in data.pages_per_day.values() for d in series})
    for i, (name, series) in enumerate(data.pages_per_day.items()):
        ax.plot([d for d in days], [series.get(d, 0) for d in days],
                marker=MARKERS[i % len(MARKERS)], linestyle=LINESTYLES[i % len(LINESTYLES)],
                color=GRAYS[i % len(GRAYS)], markerfacecolor="white", markersize=6,
                linewidth=1.4, label=name)
    ax.set_ylabel("trang / pages")
    ax.set_title("Trang mỗi ngày theo người số hóa — pages per day per digitiser", fontsize=10)
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", color="0.85", linewidth=0.6)
    _date_axis(ax, days)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _svg(fig, "pages-per-day")


def _date_axis(ax: Any, days: Sequence[date]) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=2, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d/%m/%Y"))
    if len(days) == 1:
        only = mdates.date2num(days[0])
        ax.set_xlim(only - 1, only + 1)
    for label in ax.get_xticklabels():
        label.set_rotation(30)
        label.set_horizontalalignment("right")
        label.set_fontsize(8)


def review_share_chart(data: ChartData) -> str | None:
    """Share of each digitiser's bundles that need a person's review (hatched bars)."""
    if not data.review:
        return None
    names = list(data.review)
    shares = [(n / total if total else 0.0) for n, total in data.review.values()]
    fig = _figure(8.0, 0.5 + 0.45 * len(names) + 1.0)
    ax = fig.add_subplot()
    bars = ax.barh(range(len(names)), [s * 100 for s in shares], color="0.85",
                   edgecolor="black", linewidth=0.8)
    for i, bar in enumerate(bars):
        bar.set_hatch(HATCHES[i % len(HATCHES)])
        n, total = data.review[names[i]]
        ax.text(bar.get_width() + 1, bar.get_y() + bar.get_height() / 2,
                f"{n}/{total} ({shares[i]:.0%})", va="center", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 115)
    ax.set_xlabel("% hồ sơ cần xem lại / % of bundles needing review")
    ax.set_title("Tỷ lệ cần xem lại theo người số hóa — review share per digitiser",
                 fontsize=10)
    return _svg(fig, "review-share")


def _unit(values: Sequence[float]) -> tuple[float, str]:
    p90 = percentile_nearest_rank(values, 0.9)
    if p90 < 2 * 3600:
        return 60.0, "phút / minutes"
    if p90 < 3 * 86400:
        return 3600.0, "giờ / hours"
    return 86400.0, "ngày / days"


def scan_to_signature_chart(data: ChartData) -> str | None:
    """Distribution of scan-to-signature times (hatched histogram, median and p90 lines)."""
    values = list(data.scan_to_signature_s)
    if not values:
        return None
    scale, unit = _unit(values)
    scaled = [v / scale for v in values]
    fig = _figure(8.0, 3.2)
    ax = fig.add_subplot()
    bins = max(5, min(30, int(math.sqrt(len(scaled))) + 1))
    ax.hist(scaled, bins=bins, color="0.85", edgecolor="black", linewidth=0.8, hatch="//",
            label="tài liệu / documents")
    median = statistics.median(scaled)
    p90 = percentile_nearest_rank(scaled, 0.9)
    ax.axvline(median, color="black", linestyle="--", linewidth=1.6,
               label=f"trung vị / median {median:.1f}")
    ax.axvline(p90, color="black", linestyle=":", linewidth=2.0, label=f"p90 {p90:.1f}")
    ax.set_xlabel(unit)
    ax.set_ylabel("tài liệu / documents")
    ax.set_title("Từ lúc quét đến lúc ký — scan to signature", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    return _svg(fig, "scan-to-signature")
