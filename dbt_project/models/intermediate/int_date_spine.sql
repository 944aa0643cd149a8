with

activity as (

    -- Every day with a clean event or a demand order line has a user activity row.
    select activity_date from {{ ref('fct_user_daily_activity') }}

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
