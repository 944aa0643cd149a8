with

events as (

    select event_date as activity_date from {{ ref('stg_shop__events') }}

),

order_lines as (

    select order_date as activity_date from {{ ref('stg_shop__order_lines') }}

),

activity as (

    select activity_date from events
    union all
    select activity_date from order_lines

),

data_window as (

    select
        min(activity_date) as first_day,
        max(activity_date) as last_day

    from activity

),

days as (

    {{ basketcast.date_spine('data_window', 'first_day', 'last_day') }}

),

final as (

    select
        days.date_day,
        data_window.first_day,
        data_window.last_day

    from days
    cross join data_window

)

select * from final
