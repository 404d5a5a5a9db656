"""Draw docs/img/scaling.svg from the runs ``bench/society.py --results`` recorded.

    .venv/bin/python bench/society_plot.py docs/img/scaling.jsonl docs/img/scaling.svg

One line per stage: seconds (log scale) against declaration lines (log scale; works and
holders grow in proportion), solid for 1 worker, dashed for 2. Points marked with a ring are
extrapolated (a record with ``"extrapolated": true``). The last run of each (scale, workers)
wins. Hand-written SVG: no plotting dependency.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

COLOURS = {
    "import": "#1f77b4",
    "licences": "#ff7f0e",
    "declarations": "#2ca02c",
    "allocation": "#d62728",
    "approval": "#9467bd",
    "payouts": "#8c564b",
    "reconcile": "#e377c2",
    "quarter": "#000000",
}
W, H, LEFT, RIGHT, TOP, BOTTOM = 760, 460, 70, 150, 40, 60


def runs_load(path: str) -> dict[tuple[float, int], dict]:
    runs = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            runs[(record["scale"], record["workers"])] = record
    return runs


def series(runs: dict) -> dict[tuple[str, int], list[tuple[float, float, bool]]]:
    out: dict[tuple[str, int], list[tuple[float, float, bool]]] = {}
    for (_scale, workers), record in sorted(runs.items()):
        guessed = set(record.get("extrapolated_stages", []))
        for row in record["stages"]:
            if row["stage"] in COLOURS and row["seconds"] > 0:
                out.setdefault((row["stage"], workers), []).append(
                    (record["lines"], row["seconds"], row["stage"] in guessed)
                )
        if "stopped_after" not in record:
            out.setdefault(("quarter", workers), []).append(
                (record["lines"], record["quarter_seconds"], bool(guessed))
            )
    return out


def svg(lines: dict, title: str) -> str:
    xs = [x for pts in lines.values() for x, _, _ in pts]
    ys = [y for pts in lines.values() for _, y, _ in pts]
    x0, x1 = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
    y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)

    def px(x: float) -> float:
        return LEFT + (math.log10(x) - x0) / (x1 - x0) * (W - LEFT - RIGHT)

    def py(y: float) -> float:
        return H - BOTTOM - (math.log10(y) - y0) / (y1 - y0) * (H - TOP - BOTTOM)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{W / 2 - RIGHT / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>',
    ]
    for e in range(x0, x1 + 1):
        x = px(10**e)
        out.append(f'<line x1="{x}" y1="{TOP}" x2="{x}" y2="{H - BOTTOM}" stroke="#ddd"/>')
        out.append(f'<text x="{x}" y="{H - BOTTOM + 16}" text-anchor="middle">1e{e}</text>')
    for e in range(y0, y1 + 1):
        y = py(10**e)
        out.append(f'<line x1="{LEFT}" y1="{y}" x2="{W - RIGHT}" y2="{y}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4}" text-anchor="end">{10**e:g} s</text>')
    out.append(
        f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 18}" text-anchor="middle">declaration '
        "lines per quarter (works = lines / 20, holders = lines / 100)</text>"
    )
    out.append(
        f'<text x="16" y="{(TOP + H - BOTTOM) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {(TOP + H - BOTTOM) / 2})">seconds (log)</text>'
    )
    for (stage, workers), pts in sorted(lines.items()):
        pts = sorted(pts)
        colour = COLOURS[stage]
        dash = ' stroke-dasharray="6 4"' if workers > 1 else ""
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y, _ in pts)
        width = 2.5 if stage == "quarter" else 1.5
        out.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" '
            f'stroke-width="{width}"{dash}/>'
        )
        for x, y, guessed in pts:
            fill = "white" if guessed else colour
            out.append(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{fill}" '
                f'stroke="{colour}"/>'
            )
    target = py(300) if y0 <= math.log10(300) <= y1 else None
    if target is not None:
        out.append(
            f'<line x1="{LEFT}" y1="{target}" x2="{W - RIGHT}" y2="{target}" stroke="#000" '
            'stroke-dasharray="2 3"/>'
        )
        out.append(f'<text x="{LEFT + 4}" y="{target - 4}">target: quarter &lt; 300 s</text>')
    ly = TOP + 10
    for stage, colour in COLOURS.items():
        out.append(
            f'<line x1="{W - RIGHT + 12}" y1="{ly}" x2="{W - RIGHT + 36}" y2="{ly}" '
            f'stroke="{colour}" stroke-width="2"/>'
        )
        out.append(f'<text x="{W - RIGHT + 42}" y="{ly + 4}">{stage}</text>')
        ly += 18
    out.append(f'<text x="{W - RIGHT + 12}" y="{ly + 10}">solid: 1 worker</text>')
    out.append(f'<text x="{W - RIGHT + 12}" y="{ly + 28}">dashed: 2 workers</text>')
    out.append(f'<text x="{W - RIGHT + 12}" y="{ly + 46}">open dot: extrapolated</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def markdown(runs: dict) -> str:
    """The stage table of every run, for docs/scaling.md."""
    out = [
        "| scale | workers | stage | seconds | rows | rows/s | driver MB | worker MB | load |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (scale, workers), record in sorted(runs.items()):
        guessed = set(record.get("extrapolated_stages", []))
        for row in record["stages"]:
            mark = " (extrapolated)" if row["stage"] in guessed else ""
            out.append(
                f"| {scale:g} | {workers} | {row['stage']}{mark} | {row['seconds']:,.1f} | "
                f"{row['rows']:,} {row['unit']} | {row['per_second']:,} | {row['driver_mb']:,} | "
                f"{row['worker_mb']:,} | {row['load']:.1f} |"
            )
        label = f"stopped after {record['stopped_after']}" if "stopped_after" in record else ""
        out.append(
            f"| {scale:g} | {workers} | **quarter** {label} | **{record['quarter_seconds']:,.1f}** "
            "| | | | | |"
        )
    return "\n".join(out) + "\n"


def main() -> None:
    if "--markdown" in sys.argv:
        sys.argv.remove("--markdown")
        print(markdown(runs_load(sys.argv[1] if len(sys.argv) > 1 else "docs/img/scaling.jsonl")))
        return
    source = sys.argv[1] if len(sys.argv) > 1 else "docs/img/scaling.jsonl"
    target = sys.argv[2] if len(sys.argv) > 2 else "docs/img/scaling.svg"
    runs = runs_load(source)
    Path(target).write_text(
        svg(series(runs), "bench/society.py: seconds per stage, 2 cores (log-log)")
    )
    print(f"{target}: {len(runs)} runs")


if __name__ == "__main__":
    main()
