"""basketcast feature views: the snapshot columns Feast serves, typed as the exports are.

BIGINT columns are Int64 and DOUBLE columns are Float64, exactly as docs/contracts.md section 2
lists them. Feast itself does not hold the Parquet files to these types (it coerces, so a DOUBLE
in an Int64 feature would be truncated online only); ml_jobs.features checks the exports
against them before apply and materialize.

TTL: a snapshot stays valid for 90 days after its feature_ts in point-in-time retrieval. dbt
writes a row only for entities active in the last 90 days, so an entity that falls out of the
export keeps its last snapshot for at most another 90 days and then reads as null (unknown).
"""

from datetime import timedelta

from data_sources import item_features_source, user_features_source
from entities import item, user
from feast import FeatureView, Field
from feast.types import Float64, Int64

# How long a snapshot may stand in for the entity's current state.
SNAPSHOT_TTL = timedelta(days=90)

# Shopper activity: what the propensity model reads, online and for training.
user_activity = FeatureView(
    # Unique name within the project; feature references are "user_activity:<feature>".
    name="user_activity",
    entities=[user],
    ttl=SNAPSHOT_TTL,
    # One field per feature column of user_features.parquet (join key and timestamps aside).
    schema=[
        Field(name="views_7d", dtype=Int64, description="Item views in the 7 days before D"),
        Field(name="carts_7d", dtype=Int64, description="Add-to-carts in the 7 days before D"),
        Field(name="purchases_7d", dtype=Int64, description="Purchases in the 7 days before D"),
        Field(name="views_28d", dtype=Int64, description="Item views in the 28 days before D"),
        Field(name="carts_28d", dtype=Int64, description="Add-to-carts in the 28 days before D"),
        Field(name="purchases_28d", dtype=Int64, description="Purchases, 28 days before D"),
        Field(name="purchases_90d", dtype=Int64, description="Purchases, 90 days before D"),
        Field(name="spend_90d", dtype=Float64, description="Spend in the 90 days before D"),
        Field(
            name="days_since_last_purchase",
            dtype=Float64,
            description="Days from the last purchase to D; null if none in 90 days",
        ),
        Field(name="active_days_28d", dtype=Int64, description="Days with any event, 28 days"),
        Field(
            name="cart_to_purchase_28d",
            dtype=Float64,
            description="Purchases / carts over 28 days; null when no carts",
        ),
        Field(name="views_90d", dtype=Int64, description="Item views in the 90 days before D"),
        Field(name="carts_90d", dtype=Int64, description="Add-to-carts in the 90 days before D"),
        Field(
            name="view_to_cart_28d",
            dtype=Float64,
            description="Carts / views over 28 days; null when no views",
        ),
        Field(name="orders_90d", dtype=Int64, description="Orders not cancelled, 90 days"),
        Field(
            name="avg_basket_units_90d",
            dtype=Float64,
            description="Units per order over 90 days; null without orders",
        ),
        Field(
            name="avg_order_value_90d",
            dtype=Float64,
            description="Spend per order over 90 days; null without orders",
        ),
        Field(
            name="top_category_share_28d",
            dtype=Float64,
            description="Share of item events in the most active category, 28 days",
        ),
        Field(
            name="category_entropy_28d",
            dtype=Float64,
            description="Entropy (bits) of the category shares of item events, 28 days",
        ),
        Field(name="categories_28d", dtype=Int64, description="Categories with item events, 28 d"),
        Field(
            name="top_purchase_category_share_28d",
            dtype=Float64,
            description="Share of purchases in the most bought category, 28 days; null if none",
        ),
    ],
    online=True,
    source=user_features_source,
    tags={"owner": "basketcast", "grain": "user x day"},
)

# Item demand signals: what the demand forecast models read, online and for training.
item_demand = FeatureView(
    # Unique name within the project; feature references are "item_demand:<feature>".
    name="item_demand",
    entities=[item],
    ttl=SNAPSHOT_TTL,
    # One field per feature column of item_features.parquet (join key and timestamps aside).
    schema=[
        Field(name="units_7d", dtype=Int64, description="Units sold in the 7 days before D"),
        Field(name="units_28d", dtype=Int64, description="Units sold in the 28 days before D"),
        Field(name="views_7d", dtype=Int64, description="Views in the 7 days before D"),
        Field(name="views_28d", dtype=Int64, description="Views in the 28 days before D"),
        Field(name="carts_7d", dtype=Int64, description="Add-to-carts in the 7 days before D"),
        Field(
            name="view_to_purchase_28d",
            dtype=Float64,
            description="Purchases / views over 28 days",
        ),
        Field(name="avg_price_28d", dtype=Float64, description="Mean paid price, 28 days"),
        Field(name="list_price", dtype=Float64, description="List price on day D"),
        Field(name="is_promo", dtype=Int64, description="1 when a promotion runs on day D"),
        Field(name="review_count_90d", dtype=Int64, description="Reviews in the 90 days"),
        Field(name="avg_rating_90d", dtype=Float64, description="Mean rating over 90 days"),
        Field(
            name="trend_7d_vs_28d",
            dtype=Float64,
            description="units_7d / (units_28d / 4); null when units_28d = 0",
        ),
        Field(name="carts_28d", dtype=Int64, description="Add-to-carts in the 28 days before D"),
        Field(
            name="price_vs_category_median",
            dtype=Float64,
            description="list_price / median list price of its category",
        ),
        Field(
            name="avg_sentiment_90d",
            dtype=Float64,
            description="Mean review text sentiment (-1 .. 1), 90 days; null if none",
        ),
    ],
    online=True,
    source=item_features_source,
    tags={"owner": "basketcast", "grain": "item x day"},
)
