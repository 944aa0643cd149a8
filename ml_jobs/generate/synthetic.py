"""The synthetic shop generator: a demo shop whose true demand is known.

`generate_shop` draws a catalogue, shoppers and a promotion calendar, then walks the days in
order. Each day it computes the true expected demand per item, opens the shelves (deliveries in),
simulates shoppers (orders, events, reviews), closes the shelves (sales out, reorders) and
streams the day's rows to Parquet in the raw input contract. Beside the raw tables it writes
`truth/item_daily_demand`, the expected units before stock-outs, so forecasts can be scored
against the truth rather than against censored sales.
"""

from __future__ import annotations

import numpy as np

from ml_jobs.config import RAW_TABLES, Paths
from ml_jobs.generate.behaviour import IdCounters, ShopBehaviour
from ml_jobs.generate.catalog import (
    Catalog,
    build_catalog,
    build_promotions,
    build_users,
    epoch_day,
)
from ml_jobs.generate.demand import DemandDay, DemandModel, Inventory
from ml_jobs.generate.shop_config import ShopConfig
from ml_jobs.generate.writer import SCHEMAS, TableSink

TRUTH_TABLE = "item_daily_demand"


def generate_shop(config: ShopConfig, paths: Paths) -> dict[str, int]:
    """Write a synthetic shop under `paths` (replacing earlier output); return rows per table.

    Raw tables go to ``paths.raw_table(name)/part-*.parquet``; the truth goes to
    ``paths.truth / "item_daily_demand"``. The counts are keyed by raw table name and "truth".
    """
    config.validate()
    catalog = build_catalog(config)
    users = build_users(config, catalog)
    promotions = build_promotions(config, catalog)

    def sink(folder, schema_name: str) -> TableSink:
        schema = SCHEMAS[schema_name]
        return TableSink(folder, schema, config.row_group_rows, config.file_rows)

    sinks = {name: sink(paths.raw_table(name), name) for name in RAW_TABLES}
    sinks["truth"] = sink(paths.truth / TRUTH_TABLE, "truth")
    sinks["items"].append(catalog.items_table())
    sinks["promotions"].append(promotions.table(config.start_date))

    demand = DemandModel(config, catalog, promotions)
    inventory = Inventory(config, catalog)
    behaviour = ShopBehaviour(config, catalog, users)
    ids = IdCounters()
    for day in range(config.days):
        today = demand.day(day)
        plan_rate = demand.planning_rate(day)
        on_hand, on_order = inventory.open_day(day, plan_rate)
        out = behaviour.simulate(today, on_hand, ids)
        inventory.close_day(day, out.sold, plan_rate)
        sinks["events"].append(out.events)
        sinks["order_lines"].append(out.order_lines)
        sinks["reviews"].append(out.reviews)
        snapshot, truth = _item_day_rows(config, catalog, today, on_hand, on_order)
        sinks["inventory_snapshots"].append(snapshot)
        sinks["truth"].append(truth)
    return {name: s.close() for name, s in sinks.items()}


def _item_day_rows(
    config: ShopConfig,
    catalog: Catalog,
    today: DemandDay,
    on_hand: np.ndarray,
    on_order: np.ndarray,
) -> tuple[dict[str, object], dict[str, object]]:
    """Start-of-day inventory snapshot and truth rows for the items on sale that day."""
    live = np.nonzero(today.launched)[0]
    date = np.full(live.size, epoch_day(config.start_date) + today.day, dtype=np.int32)
    item_id = live.astype(np.int64) + 1
    snapshot = {
        "item_id": item_id,
        "snapshot_date": date,
        "on_hand": on_hand[live],
        "on_order": on_order[live],
        "lead_time_days": catalog.lead_time_days[live],
        "unit_cost": catalog.unit_cost[live],
    }
    truth = {
        "item_id": item_id,
        "demand_date": date,
        "expected_units": today.expected_units[live],
        "in_stock": on_hand[live] > 0,
    }
    return snapshot, truth
