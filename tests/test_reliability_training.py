"""Kill -9 the demand training job mid-epoch; the next job resumes from its checkpoint.

The real job (`run_demand_forecast` with the torch model, tiny settings) runs in a child
process. The test reads its log and sends SIGKILL while the final fit is in its third epoch.
The rerun then:
- reads back the backtest's finished fit and resumes the final fit from the checkpoint the
  killed process wrote (its first epochs' losses are exactly the ones the killed process
  logged), trains the remaining epochs only, and succeeds;
- closes the killed job's registry row as failed (abandoned) instead of leaving it `running`;
- writes a complete forecast and removes the checkpoints.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_demand import build_warehouse, read, synthetic_demand

from ml_jobs.config import Paths

EPOCHS = 8
JOB = f"""
import sys
from pathlib import Path
from ml_jobs.config import Paths
from ml_jobs.demand import DemandJobConfig, run_demand_forecast
from ml_jobs.demand.torch_forecaster import TorchQuantileParams
from ml_jobs.demand.torch_train import TrainConfig

train = TrainConfig(epochs={EPOCHS}, batch_size=64, threads=1)
config = DemandJobConfig(
    nthread=1,
    models=("torch_quantile",),
    backtest_cutoffs=1,
    torch=TorchQuantileParams(hidden=32, decoder_dim=8, train=train),
    write_report=False,
)
result = run_demand_forecast(Paths(Path(sys.argv[1])), config)
print("RESULT", result.runs[0].status, result.runs[0].run_id, flush=True)
"""
EPOCH_LINE = re.compile(r"epoch (\d+)/\d+ on \w+, loss ([0-9.]+)")


def job(home: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", JOB, str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.fixture
def home(tmp_path: Path) -> Paths:
    frame, promotions = synthetic_demand(n_items=12, n_days=140, seed=11)
    return build_warehouse(tmp_path / "home", frame, promotions)


def test_killed_training_resumes_from_its_checkpoint_and_is_not_left_running(
    home: Paths,
) -> None:
    first = job(home.home)
    fits, killed_losses = 0, []
    assert first.stderr is not None
    for line in first.stderr:
        found = EPOCH_LINE.search(line)
        if not found:
            continue
        epoch, loss = int(found.group(1)), float(found.group(2))
        fits += epoch == 1
        if fits == 2:  # the final fit, after the backtest's
            killed_losses.append(loss)
            if epoch == 3:
                first.send_signal(signal.SIGKILL)
                break
    assert first.wait(timeout=60) == -signal.SIGKILL
    checkpoints = list((home.artifacts / "checkpoints").glob("**/checkpoint.pt"))
    assert checkpoints, "the killed job left no checkpoint to resume from"
    killed = read(home, "SELECT run_id, status FROM ml.model_runs")
    assert killed["status"].tolist() == ["running"]

    second = job(home.home)
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err
    status, run_id = out.split()[-2:]
    assert status == "succeeded"
    # The backtest's fit had finished: it is read back, not trained again; the final fit
    # picks up after the last epoch the killed process checkpointed.
    resumed = [int(n) for n in re.findall(r"resumed after epoch (\d+)", err)]
    assert len(resumed) == 2 and resumed[0] == EPOCHS, err

    training = json.loads((home.artifacts / run_id / "model_config.json").read_text())["training"]
    done = training["resumed_from"]
    assert done == resumed[1] and 1 <= done < EPOCHS
    assert training["epochs_run"] == EPOCHS and len(training["losses"]) == EPOCHS
    # The epochs before the kill come from the killed process's checkpoint, unchanged.
    assert training["losses"][:done] == pytest.approx(killed_losses[:done], abs=1e-4)
    assert not (home.artifacts / "checkpoints" / "torch_quantile").exists()

    runs = read(home, "SELECT run_id, status, metrics->>'error' AS error FROM ml.model_runs")
    runs = runs.set_index("run_id")
    old = killed["run_id"].item()
    assert runs.loc[old, "status"] == "failed"
    assert runs.loc[old, "error"].startswith(f"abandoned: process {first.pid} on ")
    assert runs.loc[run_id, "status"] == "succeeded"
    rows = read(home, "SELECT count(*) AS n FROM predictions.item_demand_forecast_latest")
    assert rows["n"].item() == 12 * 28
