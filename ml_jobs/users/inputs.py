"""The user models' inputs, loaded once per job: events, catalogue, training set, features.

From where the dbt target built the warehouse (ml_jobs.sources: DuckDB, or the Spark catalog
and Feast's Spark offline store): the catalogue, the event log and the dbt training set
(ml.ml_user_propensity_labels), and the `propensity_v1` Feast features point-in-time for every
row that is needed, a bounded batch of rows at a time. Past `max_labelled_rows` a share of
users is kept, the same users on every cutoff. The rows become model examples
(ml_jobs.users.examples): the labelled rows of every needed cutoff, and the users active in the
`ACTIVE_DAYS` before the day after the data ends, to score.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
from rich.console import Console

from ml_jobs.config import Paths
from ml_jobs.sources import input_target
from ml_jobs.users import data
from ml_jobs.users.backtest import UserModelsConfig, run_backtest, training_cutoffs
from ml_jobs.users.examples import Examples, build_examples

ACTIVE_DAYS = 90  # users with an event in this many days before the prediction day are scored


@dataclass
class Inputs:
    """Everything the models read, loaded once: training rows and the rows to score."""

    catalog: data.Catalog
    events: data.EventLog
    labelled: list[dt.date]  # every labelled cutoff
    tests: list[dt.date]  # backtest cutoffs
    final_days: list[dt.date]  # cutoffs the served models train on
    train_all: Examples  # labelled rows of every needed cutoff
    predict_ex: Examples  # users to score, as of the day after the data ends
    feature_names: list[str]
    as_of: dt.date
    predict_ts: pd.Timestamp

    def backtest(
        self,
        config: UserModelsConfig,
        log=print,  # noqa: ANN001 - a print-like callable
        keep: dict | None = None,
    ) -> pd.DataFrame:
        """The rolling backtest over the test cutoffs: long metric rows of every model."""
        return run_backtest(
            self.train_all,
            self.labelled,
            self.tests,
            self.feature_names,
            self.events,
            self.catalog,
            config,
            log,
            keep=keep,
        )


def sample_users(rows: pd.DataFrame, max_rows: int) -> pd.DataFrame:
    """`rows` when they are at most `max_rows`; otherwise the rows of a fixed share of users,
    the same users on every cutoff (picked by a hash of user_id), about `max_rows` in all."""
    if max_rows < 1:
        raise ValueError(f"max_labelled_rows must be at least 1, got {max_rows}")
    if len(rows) <= max_rows:
        return rows
    share = max_rows / len(rows)
    users = rows["user_id"].to_numpy(np.uint64)
    hashed = (users * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)  # 24 well-mixed bits
    return rows[hashed < np.uint64(share * (1 << 24))].reset_index(drop=True)


def load_inputs(
    paths: Paths, config: UserModelsConfig, console: Console, target: str | None = None
) -> Inputs:
    """Events, catalogue, training set and point-in-time features, read from where `target`
    built the warehouse (ml_jobs.sources: DuckDB, or the Spark catalog and Feast's Spark
    offline store)."""
    with console.status("loading events, catalogue and the training set"):
        catalog = data.load_catalog(paths, target)
        events = data.load_events(paths, catalog, target=target)
        labels = data.load_labels(paths, target)
    labelled = sorted(labels["cutoff_date"].unique())
    if not labelled:
        raise data.MissingTrainingDataError(
            f"{data.LABEL_TABLE} has no cutoffs: the data must span more than "
            f"{config.window_days} days"
        )
    tests = labelled[-config.n_cutoffs :] if config.n_cutoffs > 0 else []
    final_days = labelled[-config.train_cutoffs :]
    needed = set(final_days) | set(tests)
    for test in tests:
        needed |= set(training_cutoffs(labelled, test, config.window_days, config.train_cutoffs))
    rows = labels[labels["cutoff_date"].isin(needed)].reset_index(drop=True)
    del labels
    all_rows = len(rows)
    rows = sample_users(rows, config.max_labelled_rows)

    as_of = events.last_day
    predict_ts = pd.Timestamp(as_of + dt.timedelta(days=1)).tz_localize("UTC")
    population = data.scoring_population(events, predict_ts, ACTIVE_DAYS)
    scoring = pd.DataFrame({"user_id": population, "cutoff_ts": predict_ts})
    n = len(rows)
    with console.status(f"point-in-time features for {n + len(scoring)} rows (Feast)") as status:

        def progress(done: int, total: int) -> None:
            status.update(f"point-in-time features: {done} of {total} rows (Feast)")

        both = pd.concat([rows[["user_id", "cutoff_ts"]], scoring], ignore_index=True)
        features = data.user_features(
            paths,
            both["user_id"].to_numpy(),
            both["cutoff_ts"],
            batch_rows=config.feature_batch_rows,
            on_batch=progress,
            offline=input_target(target),
        )
        del both
    feature_names = [c for c in features.columns if c not in ("user_id", "event_timestamp")]
    train_features, predict_features = features.iloc[:n], features.iloc[n:]
    del features
    train_all = build_examples(
        rows,
        train_features,
        events,
        catalog,
        config.max_len,
        config.window_days,
        True,
        torch_inputs=config.use_torch,
    )
    del rows, train_features
    predict_ex = build_examples(
        scoring,
        predict_features,
        events,
        catalog,
        config.max_len,
        config.window_days,
        False,
        torch_inputs=config.use_torch,
    )
    sampled = "" if n == all_rows else f" (a share of users: {n} of {all_rows} rows)"
    console.log(
        f"user models: {n} labelled rows on {len(needed)} cutoffs{sampled}, "
        f"{len(population)} users to score as of {as_of}"
    )
    return Inputs(
        catalog,
        events,
        labelled,
        tests,
        final_days,
        train_all,
        predict_ex,
        feature_names,
        as_of,
        predict_ts,
    )
