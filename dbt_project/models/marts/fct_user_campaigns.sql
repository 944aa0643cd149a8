-- One row per user and campaign they received, with the campaign's type, window and length.
select
    user_id,
    campaign_id,
    campaign_type,
    start_date,
    end_date,
    {{ dbt.datediff('start_date', 'end_date', 'day') }} + 1 as duration_days

from {{ ref('stg_shop__campaigns') }}
