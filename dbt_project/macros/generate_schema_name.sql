{#-
    Schemas are named exactly as configured (`staging`, `marts`, `consumers`, ...), never
    prefixed with the target schema, so SQL users always find `marts.fct_item_daily_demand`.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
