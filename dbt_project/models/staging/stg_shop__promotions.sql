-- The clean rows of base_shop__promotions; the rejected ones are in audit.rejected_rows.
select
    item_id,
    start_date,
    end_date,
    discount_pct

from {{ ref('base_shop__promotions') }}
where rejection_reason is null
