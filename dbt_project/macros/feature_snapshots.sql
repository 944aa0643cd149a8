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
