"""basketcast feature services: the versioned feature sets each model family is trained on.

A model run records its feature service name (ml.model_runs.feature_service), and serving asks
for the same service, so training and serving read identical columns. Change a service's
feature list by adding a new version (demand_v2, ...), never by editing one in use.
"""

from feast import FeatureService
from feature_views import item_demand, user_activity

# Item demand forecast models (torch global model, XGBoost and baselines): all item features.
demand_v1 = FeatureService(
    name="demand_v1",
    features=[item_demand],
    description="Item demand features for the demand forecast models.",
    tags={"model_family": "demand"},
)

# User purchase propensity model (and its XGBoost baseline): all user features.
propensity_v1 = FeatureService(
    name="propensity_v1",
    features=[user_activity],
    description="User activity features for the purchase propensity model.",
    tags={"model_family": "propensity"},
)
