{{
    config(
        materialized='external' if target.type == 'duckdb' else 'table',
        location=env_var('BASKETCAST_HOME', '.basketcast') ~ '/exports/item_features.parquet',
    )
}}

-- The export Feast reads; computed (incrementally) in int_item_feature_snapshots.
select * from {{ ref('int_item_feature_snapshots') }}
