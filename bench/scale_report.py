"""How bench/scale.py records a run: bench/scale_runs.jsonl, a RESULTS.md section, a plot.

The growth table and the plot are drawn from the newest record per scale and step, so a scale
re-run replaces its own points and keeps the others.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scale import StepResult

BENCH = Path(__file__).resolve().parent
SCALE_ORDER = ("tiny", "S", "M", "L")
STEPS = ("generate", "dbt build", "materialize", "train", "predict", "consumers")


@dataclass(frozen=True)
class Outputs:
    """Where a run is recorded: bench/ itself unless --out names another folder."""

    folder: Path = BENCH

    @property
    def results(self) -> Path:
        return self.folder / "RESULTS.md"

    @property
    def runs(self) -> Path:
        return self.folder / "scale_runs.jsonl"

    @property
    def plot(self) -> Path:
        return self.folder / "scale.png"


def record(
    out: Outputs,
    scale: str,
    sizes: tuple[int, int, int],
    events: int,
    results: list[StepResult],
    host: dict[str, object],
) -> None:
    """Append the run to the JSON lines and a section (its table and the growth table) to
    RESULTS.md."""
    stamp = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    with out.runs.open("a") as fh:
        for r in results:
            row = {"when": stamp, "scale": scale, "events": events, **asdict(r), **host}
            fh.write(json.dumps(row) + "\n")
    users, items, days = sizes
    lines = [
        f"### Scale {scale} — {events:,} events ({users:,} users × {items:,} items × {days} days)"
        " (bench/scale.py)",
        "",
        f"{stamp} · {host['machine']}, {host['cores']} cores, {host['memory_gb']} GB, Python "
        f"{host['python']} · DuckDB memory_limit {host.get('duckdb_memory_limit', 'default')} · "
        f"load average {host['load_avg_1m']} at start · each step its own "
        "process; median of the repeats where a step ran more than once",
        "",
        "| step | runs | wall s | rows | rows/s | peak RSS MB | floor s | step / floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        floor = "–" if r.floor_seconds is None else f"{r.floor_seconds:.1f}"
        ratio = "–" if not r.floor_seconds else f"{r.seconds / r.floor_seconds:.2f}×"
        lines.append(
            f"| {r.step} | {r.repeats} | {r.seconds:.1f} | {r.rows:,} | {r.rows_per_s:,.0f} | "
            f"{r.peak_rss_mb:,.0f} | {floor} | {ratio} |"
        )
    train = next((r for r in results if r.step == "train"), None)
    if train and train.extra.get("torch samples/s") and train.extra.get("floor samples/s"):
        model, floor = train.extra["torch samples/s"], train.extra["floor samples/s"]
        lines += [
            "",
            f"torch training {model:,.0f} samples/s against {floor:,.0f} samples/s for the same "
            f"batches drawn with no model: the model costs {floor / model:.1f}× the data loop.",
        ]
    lines += [
        "",
        "How cost grows (newest record per scale; slope of log cost on log events, 1.0 = linear):",
        "",
        *growth_table(out),
        "",
    ]
    with out.results.open("a") as fh:
        fh.write("\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


def newest_records(out: Outputs) -> dict[tuple[str, str], dict]:
    newest: dict[tuple[str, str], dict] = {}
    if out.runs.exists():
        for line in out.runs.read_text().splitlines():
            row = json.loads(line)
            newest[(row["scale"], row["step"])] = row
    return newest


def growth_table(out: Outputs) -> list[str]:
    """Time and memory per step across the scales on record, with the log-log slope
    (1.0 = linear in events) between consecutive scales."""
    newest = newest_records(out)
    scales = [s for s in SCALE_ORDER if any(k[0] == s for k in newest)]
    if len(scales) < 2:
        return ["(growth table: needs two scales on record)"]
    head = " | ".join(f"{s} s / MB" for s in scales)
    lines = [
        f"| step | {head} | time slope | memory slope |",
        "|---|" + "---:|" * (len(scales) + 2),
    ]
    for step in STEPS:
        rows = [newest.get((s, step)) for s in scales]
        cells = " | ".join(
            "–" if r is None else f"{r['seconds']:.1f} / {r['peak_rss_mb']:,.0f}" for r in rows
        )
        known = [r for r in rows if r is not None]
        slopes = ["–", "–"]
        if len(known) >= 2:
            a, b = known[-2], known[-1]
            span = math.log(b["events"] / a["events"])
            slopes = [
                f"{math.log(b[key] / a[key]) / span:.2f}" if a[key] > 0 and b[key] > 0 else "–"
                for key in ("seconds", "peak_rss_mb")
            ]
        lines.append(f"| {step} | {cells} | {slopes[0]} | {slopes[1]} |")
    return lines


def plot(out: Outputs) -> Path | None:
    """Time and peak memory against events, log-log, one line per step."""
    newest = newest_records(out)
    if not newest:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for step in STEPS:
        rows = sorted((r for (s, st), r in newest.items() if st == step), key=lambda r: r["events"])
        if rows:
            x = [r["events"] for r in rows]
            axes[0].plot(x, [r["seconds"] for r in rows], marker="o", label=step)
            axes[1].plot(x, [r["peak_rss_mb"] for r in rows], marker="o", label=step)
    for ax, label in zip(axes, ("wall time (s)", "peak RSS (MB)"), strict=True):
        ax.set(xscale="log", yscale="log", xlabel="events", ylabel=label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("basketcast pipeline cost by scale (bench/scale.py)")
    fig.tight_layout()
    fig.savefig(out.plot, dpi=110)
    plt.close(fig)
    return out.plot
