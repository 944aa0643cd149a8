{%- set cadence = var('feature_snapshot_days') | int -%}

with

spine as (

    select * from {{ ref('int_date_spine') }}

),

candidates as (

    select
        cast({{ dbt.dateadd('day', 1, 'date_day') }} as date) as snapshot_date,
        cast({{ dbt.dateadd('day', 1, 'last_day') }} as date) as newest_snapshot_date

    from spine

),

final as (

    select
        snapshot_date,
        {{ basketcast.utc_midnight('snapshot_date') }} as feature_ts,
        cast({{ dbt.dateadd('day', -7, 'snapshot_date') }} as date) as window_7d_start,
        cast({{ dbt.dateadd('day', -28, 'snapshot_date') }} as date) as window_28d_start,
        cast({{ dbt.dateadd('day', -(var('feature_active_days') | int), 'snapshot_date') }} as date)
            as active_window_start,
        cast({{ dbt.dateadd('day', -(var('review_window_days') | int), 'snapshot_date') }} as date)
            as review_window_start

    from candidates
    where mod({{ dbt.datediff('snapshot_date', 'newest_snapshot_date', 'day') }}, {{ cadence }}) = 0

)

select * from final
