{#-
    Snapshot days sit on a fixed calendar: every `feature_snapshot_days` days counted from
    `feature_snapshot_anchor` (a Monday, so weekly snapshots fall on Mondays), plus the day
    after the last day of data, so the newest snapshot always sees all data. A day's
    `snapshot_slot` is the first calendar day on or after it: the newest snapshot shares its
    slot with the calendar snapshot it stands in for, which replaces it once that day has
    data. New data therefore moves no existing snapshot day, and an incremental run only
    computes the newest slots.
-#}
{%- set cadence = var('feature_snapshot_days') | int -%}
{%- set anchor = "cast('" ~ var('feature_snapshot_anchor') ~ "' as date)" -%}

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

placed as (

    select
        snapshot_date,
        newest_snapshot_date,
        mod({{ dbt.datediff(anchor, 'snapshot_date', 'day') }}, {{ cadence }}) as days_past_calendar

    from candidates

),

final as (

    select
        snapshot_date,
        cast({{ dbt.dateadd(
            'day',
            'mod(' ~ cadence ~ ' - days_past_calendar, ' ~ cadence ~ ')',
            'snapshot_date',
        ) }} as date) as snapshot_slot,
        {{ basketcast.utc_midnight('snapshot_date') }} as feature_ts,
        cast({{ dbt.dateadd('day', -7, 'snapshot_date') }} as date) as window_7d_start,
        cast({{ dbt.dateadd('day', -28, 'snapshot_date') }} as date) as window_28d_start,
        cast({{ dbt.dateadd('day', -(var('feature_active_days') | int), 'snapshot_date') }} as date)
            as active_window_start,
        cast({{ dbt.dateadd('day', -(var('review_window_days') | int), 'snapshot_date') }} as date)
            as review_window_start

    from placed
    where days_past_calendar = 0
        or snapshot_date = newest_snapshot_date

)

select * from final
