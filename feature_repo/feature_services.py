"""basketcast feature services: the versioned feature sets each model family is trained on.

A model run records its feature service name (ml.model_runs.feature_service), and serving asks
for the same service, so training and serving read identical columns. Change a service's
feature list by adding a new version (demand_v2, ...), never by editing one in use: the v1
services list their features by name, so new columns in a view do not change them.
"""

from feast import FeatureService
from feature_views import item_demand, user_activity

# The item features demand_v1 was defined with (the whole item_demand view at the time).
DEMAND_V1_FEATURES = [
    "units_7d",
    "units_28d",
    "views_7d",
    "views_28d",
    "carts_7d",
    "view_to_purchase_28d",
    "avg_price_28d",
    "list_price",
    "is_promo",
    "review_count_90d",
    "avg_rating_90d",
    "trend_7d_vs_28d",
]

# The user features propensity_v1 was defined with (the whole user_activity view at the time).
PROPENSITY_V1_FEATURES = [
    "views_7d",
    "carts_7d",
    "purchases_7d",
    "views_28d",
    "carts_28d",
    "purchases_28d",
    "purchases_90d",
    "spend_90d",
    "days_since_last_purchase",
    "active_days_28d",
    "cart_to_purchase_28d",
]

# Item demand forecast models (torch global model, XGBoost and baselines).
demand_v1 = FeatureService(
    name="demand_v1",
    features=[item_demand[DEMAND_V1_FEATURES]],
    description="Item demand features for the demand forecast models.",
    tags={"model_family": "demand"},
)

# User purchase propensity model (and its XGBoost baseline).
propensity_v1 = FeatureService(
    name="propensity_v1",
    features=[user_activity[PROPENSITY_V1_FEATURES]],
    description="User activity features for the purchase propensity model.",
    tags={"model_family": "propensity"},
)

# demand_v1 plus carts over 28 days, price against the category median and review text
# sentiment: every feature of item_demand. For demand models trained from now on.
demand_v2 = FeatureService(
    name="demand_v2",
    features=[item_demand],
    description="All item demand features: demand_v1 + carts_28d, price_vs_category_median, "
    "avg_sentiment_90d.",
    tags={"model_family": "demand"},
)

# propensity_v1 plus 90-day funnel counts, orders, basket size, order value and category
# shares: every feature of user_activity. For propensity models trained from now on.
propensity_v2 = FeatureService(
    name="propensity_v2",
    features=[user_activity],
    description="All user activity features: propensity_v1 + 90-day funnel, orders, basket "
    "size, order value and category shares.",
    tags={"model_family": "propensity"},
)
