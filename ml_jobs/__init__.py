"""basketcast: warehouse-native demand intelligence.

The package holds every Python step of the pipeline: synthetic data generation and ingest,
warehouse I/O, the feature store client, demand models, batch prediction and the CLI. Each step is
a plain function that the CLI, the Airflow DAGs and the tests all call.
"""

__version__ = "0.1.0"
