{#-
    Incremental models that keep a history, configured per warehouse. Plain Parquet tables on
    Spark cannot delete rows, so there the same behaviour comes from Spark's own strategies.
-#}

{#-
    Each run replaces the rows of the `key` values it brings and keeps the others:
    `delete+insert` on `key`; on Spark `insert_overwrite` of the table partitioned by `key`
    (a partition column is stored last, so on Spark `key` is the table's last column).
-#}
{% macro replace_by_key_config(key) -%}
    {{ return(adapter.dispatch('replace_by_key_config', 'basketcast')(key)) }}
{%- endmacro %}

{% macro default__replace_by_key_config(key) -%}
    {{ return({'incremental_strategy': 'delete+insert', 'unique_key': key}) }}
{%- endmacro %}

{% macro spark__replace_by_key_config(key) -%}
    {{ return({'incremental_strategy': 'insert_overwrite', 'partition_by': [key]}) }}
{%- endmacro %}

{#-
    The `full_refresh` setting of an append-only history (audit.reconciliation): none (follow
    `--full-refresh`) where incremental builds are the rule; false on Spark, whose warehouse
    builds are all full refreshes (see docs/deployment.md), so every load is still appended.
-#}
{% macro append_history_full_refresh() -%}
    {{ return(adapter.dispatch('append_history_full_refresh', 'basketcast')()) }}
{%- endmacro %}

{% macro default__append_history_full_refresh() -%}
    {{ return(none) }}
{%- endmacro %}

{% macro spark__append_history_full_refresh() -%}
    {{ return(false) }}
{%- endmacro %}
