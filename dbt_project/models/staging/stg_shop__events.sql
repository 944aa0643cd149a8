-- The clean rows of base_shop__events; the rejected ones are in audit.rejected_rows.
select
    event_id,
    user_id,
    item_id,
    event_type,
    event_ts,
    event_date,
    session_id,
    quantity,
    price,
    query_text,
    search_term

from {{ ref('base_shop__events') }}
where rejection_reason is null
