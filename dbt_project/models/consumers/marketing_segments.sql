{{
    config(
        materialized='incremental',
        on_schema_change='append_new_columns',
        full_refresh=false,
        **basketcast.replace_by_key_config('as_of_date'),
    )
}}
{#-
    History: one block of rows per as-of date. Each build scores the latest propensity run and
    replaces the rows of its as-of date, so rerunning a date changes nothing and earlier dates
    stay; full_refresh=false keeps that history through `dbt build --full-refresh`.
-#}
{%- set window_days = var('segment_rfm_window_days') -%}
{%- set new_days = var('segment_new_customer_days') -%}
{%- set at_risk = var('segment_at_risk_churn_risk') -%}
{%- set hibernating = var('segment_hibernating_churn_risk') -%}
{%- set promising_decile = var('segment_promising_max_decile') -%}
{%- set default_gap = var('segment_default_order_gap_days') -%}
{%- for name, value, low, high in [
        ('segment_rfm_window_days', window_days, 1, none),
        ('segment_new_customer_days', new_days, 0, none),
        ('segment_at_risk_churn_risk', at_risk, 0, 1),
        ('segment_hibernating_churn_risk', hibernating, 0, 1),
        ('segment_promising_max_decile', promising_decile, 0, 10),
        ('segment_default_order_gap_days', default_gap, 1, none)] -%}
    {%- if value is not number or value < low or (high is not none and value > high) -%}
        {{ exceptions.raise_compiler_error(
            "var " ~ name ~ " must be a number from " ~ low ~ " to " ~ (high or "any")
            ~ "; got " ~ value
        ) }}
    {%- endif -%}
{%- endfor %}

with

propensity as (

    select * from {{ source('predictions', 'user_purchase_propensity_latest') }}

),

activity as (

    select * from {{ ref('fct_user_daily_activity') }}
    where orders > 0

),

catalogue as (

    {{ basketcast.marketing_segment_catalogue_relation() }}

),

campaign_reach as (

    {{ basketcast.marketing_segment_campaign_reach('propensity', ref('fct_user_campaigns')) }}

),

order_days as (

    -- Each scored user's days with an order, up to the as-of date.
    select
        propensity.as_of_date,
        propensity.user_id,
        activity.activity_date as order_date,
        activity.orders,
        activity.spend,
        case
            when activity.activity_date
                > {{ dbt.dateadd('day', -window_days, 'propensity.as_of_date') }}
                then 1
            else 0
        end as in_window

    from propensity
    inner join activity
        on propensity.user_id = activity.user_id
        and activity.activity_date <= propensity.as_of_date

),

order_history as (

    select
        as_of_date,
        user_id,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date,
        count(*) as order_day_count,
        sum(in_window * orders) as frequency,
        {{ basketcast.round_double('sum(in_window * spend)', 2) }} as monetary

    from order_days
    group by as_of_date, user_id

),

users as (

    select
        propensity.as_of_date,
        propensity.user_id,
        propensity.run_id as propensity_run_id,
        propensity.p_purchase,
        propensity.expected_spend,
        propensity.decile,
        order_history.first_order_date,
        order_history.last_order_date,
        coalesce(order_history.frequency, 0) as frequency,
        coalesce(order_history.monetary, 0) as monetary,
        {{ dbt.datediff('order_history.last_order_date', 'propensity.as_of_date', 'day') }}
            as days_since_last_order,
        case
            when order_history.order_day_count >= 2
                then cast({{ dbt.datediff(
                    'order_history.first_order_date', 'order_history.last_order_date', 'day'
                ) }} as {{ basketcast.type_double() }}) / (order_history.order_day_count - 1)
        end as own_order_gap_days

    from propensity
    left join order_history
        on propensity.as_of_date = order_history.as_of_date
        and propensity.user_id = order_history.user_id

),

population_gaps as (

    -- Users with a single order day borrow the median rhythm of those with two or more.
    select
        as_of_date,
        {{ basketcast.median('own_order_gap_days') }} as median_order_gap_days

    from users
    where own_order_gap_days is not null
    group by as_of_date

),

churn as (

    -- churn_risk = 1 - exp(-days since last order / typical gap): were the user's orders a
    -- Poisson stream at their usual rate, the chance that one would have come by now.
    select
        users.*,
        case
            when users.first_order_date is not null then coalesce(
                users.own_order_gap_days,
                population_gaps.median_order_gap_days,
                {{ default_gap }}
            )
        end as typical_order_gap_days

    from users
    left join population_gaps
        on users.as_of_date = population_gaps.as_of_date

),

churn_scored as (

    select
        *,
        days_since_last_order / typical_order_gap_days as overdue_ratio,
        1 - exp(-1.0 * days_since_last_order / typical_order_gap_days) as churn_risk

    from churn

),

buyer_ranks as (

    -- RFM among users with an order in the window. Higher is better on each: more recent,
    -- more orders, more spend; ties share the lowest rank.
    select
        as_of_date,
        user_id,
        rank() over (
            partition by as_of_date order by days_since_last_order desc
        ) as recency_rank,
        rank() over (partition by as_of_date order by frequency) as frequency_rank,
        rank() over (partition by as_of_date order by monetary) as monetary_rank,
        count(*) over (partition by as_of_date) as buyers

    from churn_scored
    where frequency > 0

),

rfm as (

    -- Quintile scores 1..5: the fifth of the ranking a user's rank falls in, ceil(5 rank / n).
    select
        as_of_date,
        user_id,
        cast(ceil(5.0 * recency_rank / buyers) as integer) as r_score,
        cast(ceil(5.0 * frequency_rank / buyers) as integer) as f_score,
        cast(ceil(5.0 * monetary_rank / buyers) as integer) as m_score

    from buyer_ranks

),

assigned as (

    select
        churn_scored.*,
        rfm.r_score,
        rfm.f_score,
        rfm.m_score,
        case
            when churn_scored.first_order_date is null then 'prospects'
            when churn_scored.first_order_date
                > {{ dbt.dateadd('day', -new_days, 'churn_scored.as_of_date') }} then 'new'
            when rfm.r_score >= 4 and rfm.f_score >= 4 and rfm.m_score >= 4
                and churn_scored.churn_risk < {{ at_risk }} then 'champions'
            when rfm.f_score + rfm.m_score >= 6
                and churn_scored.churn_risk >= {{ at_risk }} then 'at_risk'
            when rfm.f_score >= 4 then 'loyal'
            when churn_scored.decile <= {{ promising_decile }} then 'promising'
            when churn_scored.frequency = 0
                or churn_scored.churn_risk >= {{ hibernating }}
                or (rfm.r_score <= 2 and rfm.f_score <= 2) then 'hibernating'
            else 'needs_attention'
        end as segment

    from churn_scored
    left join rfm
        on churn_scored.as_of_date = rfm.as_of_date
        and churn_scored.user_id = rfm.user_id

),

final as (

    select
        cast(assigned.as_of_date as date) as as_of_date,
        cast(assigned.user_id as bigint) as user_id,
        cast(assigned.segment as {{ dbt.type_string() }}) as segment,
        cast(catalogue.recommended_action as {{ dbt.type_string() }}) as recommended_action,
        cast(assigned.r_score as integer) as r_score,
        cast(assigned.f_score as integer) as f_score,
        cast(assigned.m_score as integer) as m_score,
        cast(assigned.days_since_last_order as integer) as days_since_last_order,
        cast(assigned.frequency as bigint) as frequency,
        cast(assigned.monetary as {{ basketcast.type_double() }}) as monetary,
        cast(assigned.first_order_date as date) as first_order_date,
        cast(assigned.last_order_date as date) as last_order_date,
        cast(assigned.typical_order_gap_days as {{ basketcast.type_double() }})
            as typical_order_gap_days,
        cast(assigned.overdue_ratio as {{ basketcast.type_double() }}) as overdue_ratio,
        cast(assigned.churn_risk as {{ basketcast.type_double() }}) as churn_risk,
        cast(assigned.p_purchase as {{ basketcast.type_double() }}) as p_purchase,
        cast(assigned.expected_spend as {{ basketcast.type_double() }}) as expected_spend,
        cast(assigned.decile as integer) as propensity_decile,
        cast(assigned.propensity_run_id as {{ dbt.type_string() }}) as propensity_run_id,
        cast(coalesce(campaign_reach.in_campaign, false) as boolean) as in_campaign,
        cast(coalesce(campaign_reach.campaigns_last_90_days, 0) as integer)
            as campaigns_last_90_days

    from assigned
    inner join catalogue
        on assigned.segment = catalogue.segment
    left join campaign_reach
        on assigned.as_of_date = campaign_reach.as_of_date
        and assigned.user_id = campaign_reach.user_id

)

select * from final
