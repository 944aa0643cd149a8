"""basketcast entities: the keys features are joined and served by.

An entity is the primary key of a feature view. Both keys are BIGINT in the warehouse, so the
join keys are Int64 here; an entity dataframe or online request must use integer ids.
"""

from feast import Entity
from feast.value_type import ValueType

# A shopper. Keys user_features rows (user_id) and the propensity / recommendation models.
user = Entity(
    name="user",
    join_keys=["user_id"],
    value_type=ValueType.INT64,
    description="A shopper, keyed by the warehouse user_id.",
)

# A catalogue item (SKU). Keys item_features rows (item_id) and the demand forecast models.
item = Entity(
    name="item",
    join_keys=["item_id"],
    value_type=ValueType.INT64,
    description="A catalogue item, keyed by the warehouse item_id.",
)
