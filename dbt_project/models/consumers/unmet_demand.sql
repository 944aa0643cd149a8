{%- set window_days = var('unmet_demand_window_days') -%}
{%- set trend_z = var('unmet_demand_trend_z') -%}
{%- if window_days is not number or window_days < 1 -%}
    {{ exceptions.raise_compiler_error(
        "var unmet_demand_window_days must be a whole number of days >= 1; got " ~ window_days
    ) }}
{%- endif -%}
{%- if trend_z is not number or trend_z <= 0 -%}
    {{ exceptions.raise_compiler_error(
        "var unmet_demand_trend_z must be a positive z threshold, e.g. 1.96; got " ~ trend_z
    ) }}
{%- endif -%}

with

searches as (

    select * from {{ ref('fct_unmet_search_demand') }}

),

date_spine as (

    select * from {{ ref('int_date_spine') }}

),

data_end as (

    -- Windows end on the last day of data, whether or not anyone searched that day.
    select max(last_day) as as_of_date
    from date_spine

),

windowed as (

    select
        searches.search_term,
        data_end.as_of_date,
        searches.search_date,
        searches.searches,
        case
            when searches.search_date
                > {{ dbt.dateadd('day', -window_days, 'data_end.as_of_date') }}
                then 'recent'
            when searches.search_date
                > {{ dbt.dateadd('day', -2 * window_days, 'data_end.as_of_date') }}
                then 'previous'
        end as search_window

    from searches
    cross join data_end
    where searches.search_date <= data_end.as_of_date

),

terms as (

    select
        search_term,
        as_of_date,
        sum(case when search_window = 'recent' then searches else 0 end) as recent_searches,
        sum(case when search_window = 'previous' then searches else 0 end) as previous_searches,
        count(case when search_window = 'recent' then search_date end) as recent_search_days,
        sum(searches) as total_searches,
        min(search_date) as first_searched_date,
        max(search_date) as last_searched_date

    from windowed
    group by search_term, as_of_date

),

trends as (

    -- Two Poisson counts over equal windows: with no change, recent ~ Binomial(recent +
    -- previous, 1/2), so z = (recent - previous) / sqrt(recent + previous).
    select
        *,
        (recent_searches - previous_searches)
            / sqrt(1.0 * (recent_searches + previous_searches)) as trend_z

    from terms
    where recent_searches + previous_searches > 0

),

ranked as (

    select
        *,
        row_number() over (
            order by recent_searches desc, trend_z desc, search_term
        ) as demand_rank

    from trends

),

final as (

    select
        cast(demand_rank as bigint) as demand_rank,
        cast(search_term as {{ dbt.type_string() }}) as search_term,
        cast(as_of_date as date) as as_of_date,
        cast({{ window_days }} as integer) as window_days,
        cast(recent_searches as bigint) as recent_searches,
        cast(previous_searches as bigint) as previous_searches,
        cast(recent_search_days as bigint) as recent_search_days,
        cast(recent_searches - previous_searches as bigint) as searches_change,
        cast(
            1.0 * (recent_searches - previous_searches) / nullif(previous_searches, 0)
            as {{ basketcast.type_double() }}
        ) as searches_change_pct,
        cast(trend_z as {{ basketcast.type_double() }}) as trend_z,
        cast(
            case
                when trend_z >= {{ trend_z }} then 'up'
                when trend_z <= -{{ trend_z }} then 'down'
                else 'flat'
            end as {{ dbt.type_string() }}
        ) as trend,
        cast(total_searches as bigint) as total_searches,
        cast(first_searched_date as date) as first_searched_date,
        cast(last_searched_date as date) as last_searched_date

    from ranked

)

select * from final
