{#-
    The user feature snapshots, stored for the export `user_features`. Incremental by
    snapshot slot (the folder's config in dbt_project.yml): a run computes only the snapshot
    days `snapshots_to_build()` returns and replaces their slots.
-#}

with

snapshots as (

    {{ basketcast.snapshots_to_build() }}

),

activity as (

    select * from {{ ref('fct_user_daily_activity') }}

),

category_activity as (

    select * from {{ ref('int_user_daily_category_activity') }}

),

windowed as (

    -- Each snapshot D sees a user's days from D - 90 to D - 1: nothing from D itself.
    select
        snapshots.snapshot_date,
        snapshots.snapshot_slot,
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
        snapshot_slot,
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
    group by user_id, feature_ts, snapshot_slot

),

category_windowed as (

    -- The user's item events and purchases per category over the 28 days before D (recent
    -- interest; a 90-day window would triple the rows this join expands to).
    select
        snapshots.feature_ts,
        category_activity.user_id,
        category_activity.category_id,
        sum(category_activity.item_events) as item_events,
        sum(category_activity.purchases) as purchases

    from snapshots
    inner join category_activity
        on category_activity.activity_date < snapshots.snapshot_date
        and category_activity.activity_date >= snapshots.window_28d_start
    group by snapshots.feature_ts, category_activity.user_id, category_activity.category_id

),

category_shares as (

    -- One aggregate, no window: with x a category's item events and T = sum(x), the top
    -- share is max(x) / T and the entropy in bits is (ln T - sum(x ln x) / T) / ln 2.
    select
        user_id,
        feature_ts,
        count(*) as categories_28d,
        cast(max(item_events) as {{ basketcast.type_double() }}) / sum(item_events)
            as top_category_share_28d,
        (
            ln(sum(item_events))
            - sum(item_events * ln(item_events)) / sum(item_events)
        ) / ln(2.0) as category_entropy_28d,
        cast(max(purchases) as {{ basketcast.type_double() }}) / nullif(sum(purchases), 0)
            as top_purchase_category_share_28d

    from category_windowed
    group by user_id, feature_ts

),

joined as (

    select
        aggregated.*,
        category_shares.top_category_share_28d,
        category_shares.category_entropy_28d,
        category_shares.categories_28d,
        category_shares.top_purchase_category_share_28d

    from aggregated
    left join category_shares
        on aggregated.user_id = category_shares.user_id
        and aggregated.feature_ts = category_shares.feature_ts

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
            as avg_order_value_90d,
        {{ basketcast.round_double('top_category_share_28d', 9) }} as top_category_share_28d,
        {{ basketcast.round_double('category_entropy_28d', 9) }} as category_entropy_28d,
        cast(coalesce(categories_28d, 0) as bigint) as categories_28d,
        {{ basketcast.round_double('top_purchase_category_share_28d', 9) }}
            as top_purchase_category_share_28d,
        snapshot_slot

    from joined

)

select * from final
