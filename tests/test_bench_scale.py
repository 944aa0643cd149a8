"""The scale harness (bench/scale.py) runs end to end at a tiny scale and records what it saw.

Speed is not asserted here: the harness prints and records numbers; this proves it works.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCALE = ROOT / "bench" / "scale.py"
STEPS = ["generate", "dbt build", "materialize", "train", "predict", "consumers"]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scale-home")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, home: Path) -> Path:
    out = tmp_path_factory.mktemp("scale-out")
    command = [sys.executable, str(SCALE), "--scale", "tiny", "--repeat", "1"]
    command += ["--train-models", "seasonal_naive", "--user-models", "fast"]
    command += ["--out", str(out), "--home", str(home)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def test_every_step_is_recorded_with_time_rows_and_memory(recorded: Path) -> None:
    rows = [json.loads(line) for line in (recorded / "scale_runs.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == STEPS
    events = rows[0]["rows"]
    assert events > 1000 and all(r["events"] == events for r in rows)
    for row in rows:
        assert row["seconds"] > 0 and row["peak_rss_mb"] > 50, row
        assert row["rows"] > 0, row
        assert row["cores"] >= 1 and row["memory_gb"] > 0
    by_step = {r["step"]: r for r in rows}
    assert by_step["dbt build"]["floor_seconds"] > 0
    assert by_step["materialize"]["floor_seconds"] > 0
    assert by_step["train"]["extra"]["floor samples/s"] > 0
    # 30 items × 28 days from the seasonal-naive champion
    assert by_step["predict"]["rows"] % 28 == 0


def test_results_table_and_plot_are_written(recorded: Path) -> None:
    text = (recorded / "RESULTS.md").read_text()
    assert "### Scale tiny" in text
    for step in STEPS:
        assert f"| {step} |" in text
    assert (recorded / "scale.png").stat().st_size > 10_000


def test_growth_slopes_are_log_log(tmp_path: Path) -> None:
    """Two scales on record: the slope is d log(cost) / d log(events) per step."""
    sys.path.insert(0, str(SCALE.parent))
    import scale_report

    lines = []
    for name, events, seconds, mb in (("S", 1_000, 10.0, 100.0), ("M", 10_000, 100.0, 100.0)):
        for step in scale_report.STEPS:
            row = {"scale": name, "step": step, "events": events, "seconds": seconds}
            lines.append(json.dumps({**row, "peak_rss_mb": mb}))
    (tmp_path / "scale_runs.jsonl").write_text("\n".join(lines) + "\n")
    table = scale_report.growth_table(scale_report.Outputs(tmp_path))
    generate = next(line for line in table if line.startswith("| generate |"))
    assert generate.endswith("| 1.00 | 0.00 |"), generate


def test_a_subset_of_steps_runs_on_the_kept_home(
    recorded: Path, home: Path, tmp_path: Path
) -> None:
    """A large scale can run one step at a time: later steps read what earlier runs left."""
    first = json.loads((recorded / "scale_runs.jsonl").read_text().splitlines()[0])
    command = [sys.executable, str(SCALE), "--scale", "tiny", "--repeat", "1"]
    command += ["--steps", "consumers,predict", "--out", str(tmp_path), "--home", str(home)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "scale_runs.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == ["predict", "consumers"]  # pipeline order
    assert all(r["events"] == first["events"] for r in rows)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--steps", "train,bake", "--home", "x"], "unknown step(s) ['bake']"),
        (["--steps", "train"], "--steps needs --home"),
    ],
)
def test_bad_steps_say_what_to_fix(extra: list[str], message: str, tmp_path: Path) -> None:
    command = [sys.executable, str(SCALE), "--scale", "tiny", "--out", str(tmp_path), *extra]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode != 0 and message in done.stderr, done.stderr


def test_tiny_scale_is_never_recorded_into_bench() -> None:
    done = subprocess.run(
        [sys.executable, str(SCALE), "--scale", "tiny"], capture_output=True, text=True
    )
    assert done.returncode == 2 and "--out DIR" in done.stderr
