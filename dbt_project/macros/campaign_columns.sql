{#- The raw `campaigns` table's columns and types (docs/contracts.md), for optional_source. -#}
{% macro campaign_columns() -%}
    {{ return([
        ('campaign_id', 'bigint'),
        ('user_id', 'bigint'),
        ('campaign_type', dbt.type_string()),
        ('start_date', 'date'),
        ('end_date', 'date'),
    ]) }}
{%- endmacro %}
