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
