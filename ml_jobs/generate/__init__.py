"""Synthetic shop generation: raw tables in the input contract plus the true demand behind them.

Usage: ``generate_shop(ShopConfig(users=2000, items=150, days=240, seed=7), Paths.from_env())``
returns the rows written per table.
"""

from ml_jobs.generate.shop_config import ShopConfig
from ml_jobs.generate.synthetic import generate_shop

__all__ = ["ShopConfig", "generate_shop"]
