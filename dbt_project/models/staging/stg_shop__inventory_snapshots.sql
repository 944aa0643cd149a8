-- The clean rows of base_shop__inventory_snapshots; the rejected ones are in audit.rejected_rows.
select
    item_id,
    snapshot_date,
    on_hand,
    on_order,
    lead_time_days,
    unit_cost

from {{ ref('base_shop__inventory_snapshots') }}
where rejection_reason is null
