{#-
    The snapshot days a feature snapshot model (models/intermediate/feature_snapshots)
    computes in this run: every day of int_feature_snapshot_dates on a full build; on an
    incremental one, the days from the model's newest feature_ts minus `events_lookback_days`
    on (or from `reload_from`), the snapshots whose windows can see the days the daily models
    reloaded. Each row carries its `snapshot_slot`, the key the model is replaced by.
-#}
{% macro snapshots_to_build() -%}
    {%- set start_date = basketcast.reload_start_date('feature_ts', clean_only=false) -%}
    select * from {{ ref('int_feature_snapshot_dates') }}
    {%- if start_date %}
    where snapshot_date >= cast('{{ start_date }}' as date)
    {%- endif %}
{%- endmacro %}
{#-
    Two CTEs, `grid_bounds` and `grid_days`: a gapless calendar (`grid_date`) over the windows
    of the snapshots to build (the `snapshots` CTE) and their days. The snapshot models join
    each entity's span onto it, so one row per entity-day carries the running window sums.
-#}
{% macro feature_grid_days() -%}
grid_bounds as (

    select
        min(active_window_start) as first_day,
        max(snapshot_date) as last_day

    from snapshots

),

grid_days as (

    select date_day as grid_date
    from (
        {{ basketcast.date_spine('grid_bounds', 'first_day', 'last_day') }}
    ) as days

)
{%- endmacro %}

{#-
    The named windows of a feature snapshot model, over one row per `key` and `grid_date`:
    `days_7`, `days_28` and `days_active` (the `feature_active_days` var) see the days before
    the row's day, never the day itself.
-#}
{% macro feature_windows(key) -%}
    {%- set active_days = var('feature_active_days') | int -%}
    window
        days_7 as (
            partition by {{ key }} order by grid_date rows between 7 preceding and 1 preceding
        ),
        days_28 as (
            partition by {{ key }} order by grid_date rows between 28 preceding and 1 preceding
        ),
        days_active as (
            partition by {{ key }}
            order by grid_date
            rows between {{ active_days }} preceding and 1 preceding
        )
{%- endmacro %}

{#-
    The post-hook of a feature export (marts.user_features, marts.item_features) on DuckDB:
    the model is a view over its stored snapshots and this writes it to
    $BASKETCAST_HOME/exports/<name>.parquet with one COPY. dbt-duckdb's `external`
    materialization first copied the rows into a staging table in the warehouse file and
    counted them, most of a one-day run's export time.
-#}
{% macro feature_export_hooks(name) -%}
    {%- if target.type != 'duckdb' -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set location = env_var('BASKETCAST_HOME', '.basketcast') ~ '/exports/' ~ name ~ '.parquet' -%}
    {{ return(["copy (select * from {{ this }}) to '" ~ location ~ "' (format parquet)"]) }}
{%- endmacro %}
