{{
    config(
        materialized='external' if target.type == 'duckdb' else 'table',
        location=env_var('BASKETCAST_HOME', '.basketcast') ~ '/exports/user_features.parquet',
    )
}}

-- The export Feast reads; computed (incrementally) in int_user_feature_snapshots.
select * from {{ ref('int_user_feature_snapshots') }}
