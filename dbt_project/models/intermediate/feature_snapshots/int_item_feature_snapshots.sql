{#-
    The item feature snapshots, stored for the export `item_features`. Incremental by
    snapshot slot (the folder's config in dbt_project.yml): a run computes only the snapshot
    days `snapshots_to_build()` returns and replaces their slots.
-#}

with

snapshots as (

    {{ basketcast.snapshots_to_build() }}

),

demand as (

    select * from {{ ref('fct_item_daily_demand') }}

),

items as (

    select * from {{ ref('dim_items') }}

),

category_prices as (

    select
        category_id,
        {{ basketcast.median('list_price') }} as median_list_price

    from items
    where list_price is not null
    group by category_id

),

promotions as (

    select * from {{ ref('stg_shop__promotions') }}

),

reviews as (

    select * from {{ ref('int_review_sentiment') }}

),

windowed as (

    -- Each snapshot D sees an item's days from D - 90 to D - 1: nothing from D itself.
    select
        snapshots.snapshot_date,
        snapshots.snapshot_slot,
        snapshots.feature_ts,
        demand.item_id,
        demand.demand_date >= snapshots.window_7d_start as in_7d,
        demand.demand_date >= snapshots.window_28d_start as in_28d,
        demand.units_sold,
        demand.order_count,
        demand.views,
        demand.carts,
        demand.price,
        demand.units_sold + demand.order_count + demand.views + demand.carts
            + demand.favorites as activity

    from snapshots
    inner join demand
        on demand.demand_date < snapshots.snapshot_date
        and demand.demand_date >= snapshots.active_window_start

),

aggregated as (

    select
        item_id,
        snapshot_date,
        snapshot_slot,
        feature_ts,
        sum(case when in_7d then units_sold else 0 end) as units_7d,
        sum(case when in_28d then units_sold else 0 end) as units_28d,
        sum(case when in_7d then views else 0 end) as views_7d,
        sum(case when in_28d then views else 0 end) as views_28d,
        sum(case when in_7d then carts else 0 end) as carts_7d,
        sum(case when in_28d then carts else 0 end) as carts_28d,
        sum(case when in_28d then order_count else 0 end) as orders_28d,
        avg(case when in_28d then price end) as avg_price_28d

    from windowed
    group by item_id, snapshot_date, snapshot_slot, feature_ts
    having sum(activity) > 0

),

snapshot_promotions as (

    select distinct
        aggregated.item_id,
        aggregated.snapshot_date

    from aggregated
    inner join promotions
        on aggregated.item_id = promotions.item_id
        and aggregated.snapshot_date >= promotions.start_date
        and aggregated.snapshot_date <= promotions.end_date

),

snapshot_reviews as (

    select
        snapshots.snapshot_date,
        reviews.item_id,
        count(*) as review_count,
        avg(cast(reviews.rating as {{ basketcast.type_double() }})) as avg_rating,
        avg(reviews.sentiment) as avg_sentiment

    from snapshots
    inner join reviews
        on reviews.review_date < snapshots.snapshot_date
        and reviews.review_date >= snapshots.review_window_start
    group by snapshots.snapshot_date, reviews.item_id

),

final as (

    select
        cast(aggregated.item_id as bigint) as item_id,
        aggregated.feature_ts,
        aggregated.feature_ts as created_ts,
        cast(aggregated.units_7d as bigint) as units_7d,
        cast(aggregated.units_28d as bigint) as units_28d,
        cast(aggregated.views_7d as bigint) as views_7d,
        cast(aggregated.views_28d as bigint) as views_28d,
        cast(aggregated.carts_7d as bigint) as carts_7d,
        cast(aggregated.orders_28d as {{ basketcast.type_double() }})
            / nullif(aggregated.views_28d, 0) as view_to_purchase_28d,
        {{ basketcast.round_double('aggregated.avg_price_28d', 6) }} as avg_price_28d,
        cast(items.list_price as {{ basketcast.type_double() }}) as list_price,
        cast(case when snapshot_promotions.item_id is null then 0 else 1 end as bigint)
            as is_promo,
        cast(coalesce(snapshot_reviews.review_count, 0) as bigint) as review_count_90d,
        cast(snapshot_reviews.avg_rating as {{ basketcast.type_double() }}) as avg_rating_90d,
        cast(aggregated.units_7d as {{ basketcast.type_double() }})
            / nullif(aggregated.units_28d / 4.0, 0) as trend_7d_vs_28d,
        cast(aggregated.carts_28d as bigint) as carts_28d,
        cast(items.list_price / nullif(category_prices.median_list_price, 0)
            as {{ basketcast.type_double() }}) as price_vs_category_median,
        {{ basketcast.round_double('snapshot_reviews.avg_sentiment', 6) }} as avg_sentiment_90d,
        aggregated.snapshot_slot

    from aggregated
    left join items
        on aggregated.item_id = items.item_id
    left join category_prices
        on items.category_id = category_prices.category_id
    left join snapshot_promotions
        on aggregated.item_id = snapshot_promotions.item_id
        and aggregated.snapshot_date = snapshot_promotions.snapshot_date
    left join snapshot_reviews
        on aggregated.item_id = snapshot_reviews.item_id
        and aggregated.snapshot_date = snapshot_reviews.snapshot_date

)

select * from final
