{#-
    Sessions rebuilt from the behaviour log: a user's events belong to one session until
    `session_gap_minutes` pass without an event. The shop's own session_id is not trusted
    (it may be missing, or span days on long-lived tabs). A view: nothing downstream reads it
    in the build, so it costs nothing until queried.
-#}
{{ config(materialized='view') }}
{%- set gap_seconds = (var('session_gap_minutes') | int) * 60 -%}

with

events as (

    select * from {{ ref('stg_shop__events') }}

),

gaps as (

    select
        user_id,
        event_id,
        event_ts,
        event_type,
        {{ basketcast.epoch_seconds('event_ts') }} - {{ basketcast.epoch_seconds(
            'lag(event_ts) over (partition by user_id order by event_ts, event_id)'
        ) }} as seconds_since_previous

    from events

),

numbered as (

    select
        *,
        sum(
            case
                when seconds_since_previous is null
                    or seconds_since_previous > {{ gap_seconds }} then 1
                else 0
            end
        ) over (
            partition by user_id
            order by event_ts, event_id
            rows between unbounded preceding and current row
        ) as session_number

    from gaps

),

final as (

    select
        user_id,
        cast(session_number as bigint) as session_number,
        min(event_ts) as started_at,
        max(event_ts) as ended_at,
        {{ basketcast.utc_date('min(event_ts)') }} as session_date,
        cast(
            {{ basketcast.epoch_seconds('max(event_ts)') }}
                - {{ basketcast.epoch_seconds('min(event_ts)') }}
            as {{ basketcast.type_double() }}
        ) as duration_seconds,
        cast(count(*) as bigint) as events,
        cast(sum(case when event_type = 'view' then 1 else 0 end) as bigint) as views,
        cast(sum(case when event_type = 'cart' then 1 else 0 end) as bigint) as carts,
        cast(sum(case when event_type = 'purchase' then 1 else 0 end) as bigint) as purchases,
        cast(sum(case when event_type = 'search' then 1 else 0 end) as bigint) as searches,
        sum(case when event_type = 'purchase' then 1 else 0 end) > 0 as converted

    from numbered
    group by user_id, session_number

)

select * from final
