-- The clean rows of base_shop__campaigns; the rejected ones are in audit.rejected_rows.
select
    campaign_id,
    user_id,
    campaign_type,
    start_date,
    end_date

from {{ ref('base_shop__campaigns') }}
where rejection_reason is null
