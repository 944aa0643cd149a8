{{
    config(
        materialized='view' if target.type == 'duckdb' else 'table',
        post_hook=basketcast.feature_export_hooks('user_features', 'user_id'),
    )
}}

-- The export Feast reads ($BASKETCAST_HOME/exports/user_features/<YYYY-MM>.parquet on DuckDB,
-- written month by month by the post-hook, macros/feature_exports.sql): the stored snapshots
-- (int_user_feature_snapshots), without the slot they are replaced by.
select
    user_id,
    feature_ts,
    created_ts,
    views_7d,
    carts_7d,
    purchases_7d,
    views_28d,
    carts_28d,
    purchases_28d,
    purchases_90d,
    spend_90d,
    days_since_last_purchase,
    active_days_28d,
    cart_to_purchase_28d,
    views_90d,
    carts_90d,
    view_to_cart_28d,
    orders_90d,
    avg_basket_units_90d,
    avg_order_value_90d,
    top_category_share_28d,
    category_entropy_28d,
    categories_28d,
    top_purchase_category_share_28d

from {{ ref('int_user_feature_snapshots') }}
