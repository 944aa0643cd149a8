{{
    config(
        materialized='view' if target.type == 'duckdb' else 'table',
        post_hook=basketcast.feature_export_hooks('item_features', 'item_id'),
    )
}}

-- The export Feast reads ($BASKETCAST_HOME/exports/item_features/<YYYY-MM>.parquet on DuckDB,
-- written month by month by the post-hook, macros/feature_exports.sql): the stored snapshots
-- (int_item_feature_snapshots), without the slot they are replaced by.
select
    item_id,
    feature_ts,
    created_ts,
    units_7d,
    units_28d,
    views_7d,
    views_28d,
    carts_7d,
    view_to_purchase_28d,
    avg_price_28d,
    list_price,
    is_promo,
    review_count_90d,
    avg_rating_90d,
    trend_7d_vs_28d,
    carts_28d,
    price_vs_category_median,
    avg_sentiment_90d

from {{ ref('int_item_feature_snapshots') }}
