-- The clean rows of base_shop__order_lines; the rejected ones are in audit.rejected_rows.
select
    order_id,
    item_id,
    user_id,
    quantity,
    unit_price,
    line_revenue,
    order_ts,
    order_date,
    status,
    is_demand,
    is_returned

from {{ ref('base_shop__order_lines') }}
where rejection_reason is null
