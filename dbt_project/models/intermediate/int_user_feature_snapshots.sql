{#-
    The user feature snapshots, stored for the export `user_features`. Incremental by snapshot
    day when snapshots are daily: a run recomputes only the snapshots whose windows can see the
    days the event load reloaded (from the newest snapshot minus `events_lookback_days`, or
    from `reload_from`); other cadences move every snapshot day, so they rebuild in full.
-#}
{{
    config(
        materialized='incremental' if var('feature_snapshot_days') | int == 1 else 'table',
        incremental_strategy='delete+insert',
        unique_key='feature_ts',
        on_schema_change='fail',
    )
}}

{%- set start_date = basketcast.reload_start_date('feature_ts', clean_only=false) %}

with

snapshots as (

    select * from {{ ref('int_feature_snapshot_dates') }}
    {%- if start_date %}
    where snapshot_date >= cast('{{ start_date }}' as date)
    {%- endif %}

),

activity as (

    select * from {{ ref('fct_user_daily_activity') }}

),

windowed as (

    -- Each snapshot D sees a user's days from D - 90 to D - 1: nothing from D itself.
    select
        snapshots.snapshot_date,
        snapshots.feature_ts,
        activity.user_id,
        activity.activity_date,
        activity.activity_date >= snapshots.window_7d_start as in_7d,
        activity.activity_date >= snapshots.window_28d_start as in_28d,
        activity.views,
        activity.carts,
        activity.purchases,
        activity.spend,
        activity.orders,
        activity.units,
        activity.last_purchase_ts

    from snapshots
    inner join activity
        on activity.activity_date < snapshots.snapshot_date
        and activity.activity_date >= snapshots.active_window_start

),

aggregated as (

    select
        user_id,
        feature_ts,
        sum(case when in_7d then views else 0 end) as views_7d,
        sum(case when in_7d then carts else 0 end) as carts_7d,
        sum(case when in_7d then purchases else 0 end) as purchases_7d,
        sum(case when in_28d then views else 0 end) as views_28d,
        sum(case when in_28d then carts else 0 end) as carts_28d,
        sum(case when in_28d then purchases else 0 end) as purchases_28d,
        sum(purchases) as purchases_90d,
        sum(views) as views_90d,
        sum(carts) as carts_90d,
        sum(orders) as orders_90d,
        sum(units) as units_90d,
        sum(spend) as spend_90d,
        max(last_purchase_ts) as last_purchase_ts,
        sum(case when in_28d then 1 else 0 end) as active_days_28d

    from windowed
    group by user_id, feature_ts

),

final as (

    select
        cast(user_id as bigint) as user_id,
        feature_ts,
        feature_ts as created_ts,
        cast(views_7d as bigint) as views_7d,
        cast(carts_7d as bigint) as carts_7d,
        cast(purchases_7d as bigint) as purchases_7d,
        cast(views_28d as bigint) as views_28d,
        cast(carts_28d as bigint) as carts_28d,
        cast(purchases_28d as bigint) as purchases_28d,
        cast(purchases_90d as bigint) as purchases_90d,
        {{ basketcast.round_double('coalesce(spend_90d, 0)', 2) }} as spend_90d,
        cast(
            ({{ basketcast.epoch_seconds('feature_ts') }}
                - {{ basketcast.epoch_seconds('last_purchase_ts') }}) / 86400.0
            as {{ basketcast.type_double() }}
        ) as days_since_last_purchase,
        cast(active_days_28d as bigint) as active_days_28d,
        cast(purchases_28d as {{ basketcast.type_double() }}) / nullif(carts_28d, 0)
            as cart_to_purchase_28d,
        cast(views_90d as bigint) as views_90d,
        cast(carts_90d as bigint) as carts_90d,
        cast(carts_28d as {{ basketcast.type_double() }}) / nullif(views_28d, 0)
            as view_to_cart_28d,
        cast(orders_90d as bigint) as orders_90d,
        cast(units_90d as {{ basketcast.type_double() }}) / nullif(orders_90d, 0)
            as avg_basket_units_90d,
        {{ basketcast.round_double('spend_90d / nullif(orders_90d, 0)', 6) }}
            as avg_order_value_90d

    from aggregated

)

select * from final
