{#-
    Grain: one row per item per day with any event or demand order line (sparse).
    Incremental by activity day like fct_user_daily_activity: the days from
    `reload_start_date` on are rebuilt and replaced whole (delete+insert on activity_date).
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
    where item_id is not null
    {%- if start_date %}
        and event_date >= cast('{{ start_date }}' as date)
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
        item_id,
        event_date as activity_date,
        sum(case when event_type = 'view' then 1 else 0 end) as views,
        sum(case when event_type = 'cart' then 1 else 0 end) as carts,
        sum(case when event_type = 'favorite' then 1 else 0 end) as favorites,
        sum(case when event_type = 'purchase' then 1 else 0 end) as purchase_events,
        0 as units_sold,
        0 as order_count,
        0 as revenue

    from events
    group by item_id, event_date

),

order_counts as (

    select
        item_id,
        order_date as activity_date,
        0 as views,
        0 as carts,
        0 as favorites,
        0 as purchase_events,
        sum(quantity) as units_sold,
        count(distinct order_id) as order_count,
        sum(line_revenue) as revenue

    from order_lines
    group by item_id, order_date

),

unioned as (

    select * from event_counts
    union all
    select * from order_counts

),

final as (

    select
        item_id,
        activity_date,
        cast(sum(views) as bigint) as views,
        cast(sum(carts) as bigint) as carts,
        cast(sum(favorites) as bigint) as favorites,
        cast(sum(purchase_events) as bigint) as purchase_events,
        cast(sum(units_sold) as bigint) as units_sold,
        cast(sum(order_count) as bigint) as order_count,
        cast(sum(revenue) as {{ basketcast.type_double() }}) as revenue

    from unioned
    group by item_id, activity_date

)

select * from final
