-- The clean rows of base_shop__items; the rejected ones are in audit.rejected_rows.
select
    item_id,
    category_id,
    category_name,
    category_term,
    brand,
    title,
    base_price,
    launched_at,
    launch_date

from {{ ref('base_shop__items') }}
where rejection_reason is null
