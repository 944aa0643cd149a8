{#-
    64-bit floating point. dbt's type_float() is 32-bit on DuckDB, too coarse for money and
    demand, so the marts use this instead.
-#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'basketcast')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    {{ dbt.type_float() }}
{%- endmacro %}

{% macro duckdb__type_double() -%}
    double
{%- endmacro %}

{% macro postgres__type_double() -%}
    double precision
{%- endmacro %}

{#- The timestamp type the contracts name TIMESTAMPTZ. -#}
{% macro type_timestamptz() -%}
    {{ return(adapter.dispatch('type_timestamptz', 'basketcast')()) }}
{%- endmacro %}

{% macro default__type_timestamptz() -%}
    timestamp with time zone
{%- endmacro %}
