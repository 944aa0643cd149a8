with

segments as (

    select * from {{ ref('marketing_segments') }}

),

catalogue as (

    {{ basketcast.marketing_segment_catalogue_relation() }}

),

as_of_dates as (

    select distinct as_of_date from segments

),

grid as (

    -- Every segment on every as-of date, so a segment that emptied shows as 0.
    select
        as_of_dates.as_of_date,
        catalogue.segment,
        catalogue.segment_order,
        catalogue.recommended_action

    from as_of_dates
    cross join catalogue

),

counts as (

    select
        as_of_date,
        segment,
        count(*) as users,
        avg(p_purchase) as avg_p_purchase,
        sum(expected_spend) as expected_spend

    from segments
    group by as_of_date, segment

),

totals as (

    select
        as_of_date,
        count(*) as users_scored

    from segments
    group by as_of_date

),

sized as (

    select
        grid.as_of_date,
        grid.segment,
        grid.segment_order,
        grid.recommended_action,
        coalesce(counts.users, 0) as users,
        totals.users_scored,
        counts.avg_p_purchase,
        coalesce(counts.expected_spend, 0) as expected_spend,
        lag(grid.as_of_date) over (
            partition by grid.segment order by grid.as_of_date
        ) as previous_as_of_date,
        lag(coalesce(counts.users, 0)) over (
            partition by grid.segment order by grid.as_of_date
        ) as previous_users

    from grid
    inner join totals
        on grid.as_of_date = totals.as_of_date
    left join counts
        on grid.as_of_date = counts.as_of_date
        and grid.segment = counts.segment

),

final as (

    select
        cast(as_of_date as date) as as_of_date,
        cast(segment as {{ dbt.type_string() }}) as segment,
        cast(segment_order as integer) as segment_order,
        cast(recommended_action as {{ dbt.type_string() }}) as recommended_action,
        cast(users as bigint) as users,
        cast(users_scored as bigint) as users_scored,
        cast(1.0 * users / users_scored as {{ basketcast.type_double() }}) as share_of_users,
        {{ basketcast.round_double('avg_p_purchase', 6) }} as avg_p_purchase,
        {{ basketcast.round_double('expected_spend', 2) }} as expected_spend,
        cast(previous_as_of_date as date) as previous_as_of_date,
        cast(previous_users as bigint) as previous_users,
        cast(users - previous_users as bigint) as users_change,
        cast(
            1.0 * (users - previous_users) / nullif(previous_users, 0)
            as {{ basketcast.type_double() }}
        ) as users_change_pct,
        cast(
            case
                when previous_users is null then null
                when users < previous_users then 'shrank'
                when users > previous_users then 'grew'
                else 'unchanged'
            end as {{ dbt.type_string() }}
        ) as change_direction

    from sized

)

select * from final
