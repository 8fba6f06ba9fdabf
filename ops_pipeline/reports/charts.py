"""The reports' charts as small SVG documents (embedded in the HTML as data: URIs): bars drawn from integers,
no plotting library, the same bytes for the same numbers."""

from __future__ import annotations

import base64
from html import escape

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 44, 44
LEGEND_STEP = 90
COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2")


def bars(title: str, categories: list[str], series: dict[str, list[int]]) -> str:
    """A grouped bar chart: one group per category, one bar per series; a legend row under the title."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = max([1, *(v for values in series.values() for v in values)])
    group = plot_w / max(1, len(categories))
    bar = group * 0.8 / max(1, len(series))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="10">',
             f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>',
             f'<text x="{LEFT}" y="14" font-size="12" font-weight="bold">{escape(title)}</text>']
    for n, name in enumerate(series):
        x = LEFT + LEGEND_STEP * n
        parts.append(f'<rect x="{x}" y="21" width="10" height="10" fill="{COLOURS[n % len(COLOURS)]}"/>'
                     f'<text x="{x + 14}" y="30">{escape(name)}</text>')
    for tick in (0, top // 2, top):
        y = TOP + plot_h - plot_h * tick / top
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{LEFT - 4}" y="{y + 3:.1f}" text-anchor="end">{tick}</text>')
    label_every = -(-len(categories) // 8)  # at most 8 labels
    for i, category in enumerate(categories):
        x0 = LEFT + i * group + group * 0.1
        for n, values in enumerate(series.values()):
            h = plot_h * values[i] / top
            parts.append(f'<rect x="{x0 + n * bar:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar:.1f}" '
                         f'height="{h:.1f}" fill="{COLOURS[n % len(COLOURS)]}"><title>{escape(category)} '
                         f'{escape(list(series)[n])}: {values[i]}</title></rect>')
        if i % label_every == 0:
            parts.append(f'<text x="{x0 + group * 0.4:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle">'
                         f'{escape(category)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def aging_series(aging) -> tuple[list[str], dict[str, list[int]]]:
    """Open COs per age bucket (categories), one series of counts per currency."""
    from ops_pipeline.recon.settlement import BUCKETS

    series: dict[str, list[int]] = {}
    for row in aging:
        series.setdefault(row.currency, [0] * len(BUCKETS))[BUCKETS.index(row.bucket)] = row.count
    return list(BUCKETS), series or {"none": [0] * len(BUCKETS)}


def day_series(days) -> tuple[list[str], dict[str, list[int]]]:
    """Matched and unmatched rows per business date."""
    return ([d.day.isoformat() for d in days],
            {"matched": [d.matched for d in days], "unmatched": [d.unmatched for d in days]})
