{#-
    The item feature snapshots, stored for the export `item_features`. Incremental by
    snapshot slot (the folder's config in dbt_project.yml): a run computes only the snapshot
    days `snapshots_to_build()` returns and replaces their slots.
-#}

{%- set active_days = var('feature_active_days') | int %}

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

-- A gapless calendar over the windows of the snapshots to build and their days.
{{ basketcast.feature_grid_days() }},

item_spans as (

    select
        item_id,
        min(demand_date) as first_demand_date,
        max(demand_date) as last_demand_date

    from demand
    group by item_id

),

item_days as (

    -- One row per item and calendar day, from the item's first demand day to the last day
    -- whose window still sees its last one; null measures on days without a demand row.
    select
        item_spans.item_id,
        grid_days.grid_date,
        demand.units_sold,
        demand.order_count,
        demand.views,
        demand.carts,
        demand.price,
        demand.units_sold + demand.order_count + demand.views + demand.carts
            + demand.favorites as activity

    from item_spans
    inner join grid_days
        on grid_days.grid_date >= item_spans.first_demand_date
        and grid_days.grid_date <= cast({{ dbt.dateadd(
            'day', active_days, 'item_spans.last_demand_date'
        ) }} as date)
    left join demand
        on demand.item_id = item_spans.item_id
        and demand.demand_date = grid_days.grid_date

),

rolled as (

    -- Each day D sees the item's days from D - 90 to D - 1 (rows of the gapless calendar),
    -- nothing from D itself: window sums over one row per item-day.
    select
        item_id,
        grid_date,
        sum(activity) over days_active as activity,
        sum(units_sold) over days_7 as units_7d,
        sum(units_sold) over days_28 as units_28d,
        sum(views) over days_7 as views_7d,
        sum(views) over days_28 as views_28d,
        sum(carts) over days_7 as carts_7d,
        sum(carts) over days_28 as carts_28d,
        sum(order_count) over days_28 as orders_28d,
        avg(price) over days_28 as avg_price_28d

    from item_days
    {{ basketcast.feature_windows('item_id') }}

),

aggregated as (

    -- An item gets a snapshot row when it had activity in the window before it.
    select
        rolled.item_id,
        snapshots.snapshot_date,
        snapshots.snapshot_slot,
        snapshots.feature_ts,
        coalesce(rolled.units_7d, 0) as units_7d,
        coalesce(rolled.units_28d, 0) as units_28d,
        coalesce(rolled.views_7d, 0) as views_7d,
        coalesce(rolled.views_28d, 0) as views_28d,
        coalesce(rolled.carts_7d, 0) as carts_7d,
        coalesce(rolled.carts_28d, 0) as carts_28d,
        coalesce(rolled.orders_28d, 0) as orders_28d,
        rolled.avg_price_28d

    from snapshots
    inner join rolled
        on rolled.grid_date = snapshots.snapshot_date
    where rolled.activity > 0

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
