"""Charts as inline SVG text (pure): no script, no fonts or files to fetch, so an HTML
report opens offline in any browser. Every mark carries data-label/data-value, which is
also how the tests read the figures back."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

PALETTE = ("#3b6ea5", "#d9822b", "#4f9d69", "#c0504d", "#8064a2", "#4bacc6", "#9c8f30",
           "#7f7f7f", "#e377c2")
GOOD, BAD, AXIS = "#4f9d69", "#c0504d", "#666"
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _frame(width: int, height: int, title: str, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
            + "".join(body) + "</svg>")


def _text(x: float, y: float, text: str, anchor: str = "middle", extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {FONT} {extra}>'
            f"{escape(text)}</text>")


def bars(title: str, labels: Sequence[str], values: Sequence[int | float],
         colours: Sequence[str] | None = None, width: int = 640, height: int = 260,
         unit: str = "") -> str:
    """Vertical bars, one per label, each with its value written above it."""
    left, right, top, bottom = 40, 10, 20, 60
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([*values, 1])
    slot = plot_w / max(len(values), 1)
    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" '
            f'y2="{top + plot_h}" stroke="{AXIS}"/>',
            _text(left - 6, top + 4, f"{peak:g}{unit}", "end"),
            _text(left - 6, top + plot_h, "0", "end")]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * value / peak
        x = left + i * slot + slot * 0.15
        colour = (colours[i] if colours else PALETTE[0])
        body.append(f'<rect class="bar" x="{x:.1f}" y="{top + plot_h - h:.1f}" '
                    f'width="{slot * 0.7:.1f}" height="{h:.1f}" fill="{colour}" '
                    f'data-label="{escape(label)}" data-value="{value:g}"/>')
        body.append(_text(x + slot * 0.35, top + plot_h - h - 4, f"{value:g}"))
        body.append(_text(x + slot * 0.2, top + plot_h + 14, label, "start", extra=(
            f'transform="rotate(30 {x + slot * 0.2:.1f} {top + plot_h + 14:.1f})"')))
    return _frame(width, height, title, body)


def hbars(title: str, rows: Sequence[tuple[str, float, str]], width: int = 640,
          colour: str = PALETTE[1]) -> str:
    """Horizontal bars: (label, value, note) per row, e.g. failures by class and owner."""
    row_h, left, right, top = 22, 170, 120, 10
    height = top * 2 + row_h * max(len(rows), 1)
    peak = max([v for _, v, _ in rows] + [1])
    plot_w = width - left - right
    body = []
    if not rows:
        body.append(_text(width / 2, top + 14, "nothing recorded in this period"))
    for i, (label, value, note) in enumerate(rows):
        y = top + i * row_h
        w = plot_w * value / peak
        body.append(_text(left - 6, y + 15, label, "end"))
        body.append(f'<rect class="bar" x="{left}" y="{y + 3}" width="{w:.1f}" '
                    f'height="{row_h - 6}" fill="{colour}" data-label="{escape(label)}" '
                    f'data-value="{value:g}"/>')
        body.append(_text(left + w + 6, y + 15, f"{value:g} {note}".strip(), "start"))
    return _frame(width, height, title, body)


def lines(title: str, x_labels: Sequence[str], series: dict[str, Sequence[int]],
          width: int = 640, height: int = 280) -> str:
    """One line per series over shared x positions, with a legend on the right."""
    left, right, top, bottom = 40, 200, 20, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([v for values in series.values() for v in values] + [1])
    n = max(len(x_labels), 1)
    step = plot_w / max(n - 1, 1)
    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
            f'stroke="{AXIS}"/>', f'<line x1="{left}" y1="{top}" x2="{left}" '
            f'y2="{top + plot_h}" stroke="{AXIS}"/>',
            _text(left - 6, top + 4, f"{peak:g}", "end"),
            _text(left - 6, top + plot_h, "0", "end")]
    every = max(1, n // 8)
    for i, label in enumerate(x_labels):
        if i % every == 0 or i == n - 1:
            body.append(_text(left + i * step, top + plot_h + 16, label))
    for j, (name, values) in enumerate(series.items()):
        colour = PALETTE[j % len(PALETTE)]
        points = " ".join(f"{left + i * step:.1f},{top + plot_h - plot_h * v / peak:.1f}"
                          for i, v in enumerate(values))
        body.append(f'<polyline class="series" fill="none" stroke="{colour}" '
                    f'stroke-width="2" points="{points}" data-label="{escape(name)}" '
                    f'data-value="{",".join(str(v) for v in values)}"/>')
        ly = top + 12 + j * 16
        body.append(f'<rect x="{left + plot_w + 16}" y="{ly - 8}" width="10" height="10" '
                    f'fill="{colour}"/>')
        body.append(_text(left + plot_w + 32, ly + 1, f"{name} ({values[-1] if values else 0})",
                          "start"))
    return _frame(width, height, title, body)
