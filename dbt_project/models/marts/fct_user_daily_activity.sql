{#-
    Incremental by activity day: a run rebuilds the days from `reload_start_date` on (this
    table's newest day minus `events_lookback_days`, or `reload_from`) and replaces them whole
    (delete+insert on activity_date), so late rows are picked up and a rerun is identical.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='activity_date',
        on_schema_change='fail',
    )
}}

{%- set start_date = basketcast.reload_start_date('activity_date', clean_only=false) %}

with

events as (

    select * from {{ ref('stg_shop__events') }}
    {%- if start_date %}
    where event_date >= cast('{{ start_date }}' as date)
    {%- endif %}

),

order_lines as (

    select * from {{ ref('stg_shop__order_lines') }}
    where is_demand
    {%- if start_date %}
        and order_date >= cast('{{ start_date }}' as date)
    {%- endif %}

),

event_counts as (

    select
        user_id,
        event_date as activity_date,
        sum(case when event_type = 'view' then 1 else 0 end) as views,
        sum(case when event_type = 'cart' then 1 else 0 end) as carts,
        sum(case when event_type = 'purchase' then 1 else 0 end) as purchases,
        sum(case when event_type = 'favorite' then 1 else 0 end) as favorites,
        sum(case when event_type = 'search' then 1 else 0 end) as searches,
        count(*) as events,
        0 as orders,
        0 as units,
        0 as spend,
        max(case when event_type = 'purchase' then event_ts end) as last_purchase_ts

    from events
    group by user_id, event_date

),

order_totals as (

    select
        user_id,
        order_date as activity_date,
        0 as views,
        0 as carts,
        0 as purchases,
        0 as favorites,
        0 as searches,
        0 as events,
        count(distinct order_id) as orders,
        sum(quantity) as units,
        sum(line_revenue) as spend,
        cast(null as {{ basketcast.type_timestamptz() }}) as last_purchase_ts

    from order_lines
    group by user_id, order_date

),

unioned as (

    select * from event_counts
    union all
    select * from order_totals

),

final as (

    select
        user_id,
        activity_date,
        cast(sum(views) as bigint) as views,
        cast(sum(carts) as bigint) as carts,
        cast(sum(purchases) as bigint) as purchases,
        cast(sum(favorites) as bigint) as favorites,
        cast(sum(searches) as bigint) as searches,
        cast(sum(events) as bigint) as events,
        cast(sum(orders) as bigint) as orders,
        cast(sum(units) as bigint) as units,
        {{ basketcast.round_double('sum(spend)', 2) }} as spend,  -- to the cent: reruns match
        max(last_purchase_ts) as last_purchase_ts

    from unioned
    group by user_id, activity_date

)

select * from final
