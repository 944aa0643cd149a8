"""Getting data in: adapters that write real datasets as the raw input contract, and loaders
that put that contract into warehouses that cannot read Parquet files (postgres)."""
