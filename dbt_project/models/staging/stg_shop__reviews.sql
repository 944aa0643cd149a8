-- The clean rows of base_shop__reviews; the rejected ones are in audit.rejected_rows.
select
    review_id,
    user_id,
    item_id,
    rating,
    review_text,
    review_ts,
    review_date

from {{ ref('base_shop__reviews') }}
where rejection_reason is null
