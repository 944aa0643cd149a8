{%- set every = var('ml_label_every_days') | int -%}
{%- set window = var('ml_label_window_days') | int -%}
{%- set active = var('feature_active_days') | int -%}

with

spine as (

    select * from {{ ref('int_date_spine') }}

),

activity as (

    select * from {{ ref('fct_user_daily_activity') }}

),

cutoffs as (

    -- Cutoff C = D 00:00 UTC of a day D whose label window D .. D + window - 1 lies inside the
    -- data, every `ml_label_every_days` days counted back from the newest complete one.
    select
        cast(date_day as date) as cutoff_date,
        cast({{ dbt.dateadd('day', window, 'date_day') }} as date) as label_end_date,
        cast({{ dbt.dateadd('day', -active, 'date_day') }} as date) as active_window_start

    from spine
    where {{ dbt.dateadd('day', window - 1, 'date_day') }} <= last_day
        and date_day > first_day
        and mod(
            {{ dbt.datediff('date_day', dbt.dateadd('day', 1 - window, 'last_day'), 'day') }},
            {{ every }}
        ) = 0

),

population as (

    -- Users with any activity in the `feature_active_days` before the cutoff: the users a
    -- prediction on that day would score.
    select
        cutoffs.cutoff_date,
        activity.user_id,
        max(activity.activity_date) as last_active_date,
        count(*) as active_days_before

    from cutoffs
    inner join activity
        on activity.activity_date < cutoffs.cutoff_date
        and activity.activity_date >= cutoffs.active_window_start
    group by cutoffs.cutoff_date, activity.user_id

),

outcomes as (

    select
        cutoffs.cutoff_date,
        activity.user_id,
        sum(activity.purchases) as purchases,
        sum(activity.spend) as spend

    from cutoffs
    inner join activity
        on activity.activity_date >= cutoffs.cutoff_date
        and activity.activity_date < cutoffs.label_end_date
    group by cutoffs.cutoff_date, activity.user_id

),

final as (

    select
        cast(population.user_id as bigint) as user_id,
        population.cutoff_date,
        {{ basketcast.utc_midnight('population.cutoff_date') }} as cutoff_ts,
        cast({{ window }} as integer) as window_days,
        cast(population.active_days_before as bigint) as active_days_before,
        cast(case when coalesce(outcomes.purchases, 0) > 0 then 1 else 0 end as integer)
            as purchased,
        cast(coalesce(outcomes.purchases, 0) as bigint) as purchases,
        cast(coalesce(outcomes.spend, 0) as {{ basketcast.type_double() }}) as spend

    from population
    left join outcomes
        on outcomes.cutoff_date = population.cutoff_date
        and outcomes.user_id = population.user_id

)

select * from final
