{#-
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

items as (

    select item_id, category_id from {{ ref('stg_shop__items') }}
    where category_id is not null

),

final as (

    select
        events.user_id,
        events.event_date as activity_date,
        items.category_id,
        cast(count(*) as bigint) as item_events,
        cast(sum(case when events.event_type = 'view' then 1 else 0 end) as bigint) as views,
        cast(sum(case when events.event_type = 'cart' then 1 else 0 end) as bigint) as carts,
        cast(sum(case when events.event_type = 'purchase' then 1 else 0 end) as bigint)
            as purchases

    from events
    inner join items
        on events.item_id = items.item_id
    group by events.user_id, events.event_date, items.category_id

)

select * from final
