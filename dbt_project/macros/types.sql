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

{#-
    Round a double to `digits` decimals, so sums and means of doubles do not depend on the
    order a parallel aggregate adds them in (a rebuild writes identical values).
-#}
{% macro round_double(expression, digits) -%}
    {{ return(adapter.dispatch('round_double', 'basketcast')(expression, digits)) }}
{%- endmacro %}

{% macro default__round_double(expression, digits) -%}
    cast(round(cast({{ expression }} as numeric), {{ digits }}) as {{ basketcast.type_double() }})
{%- endmacro %}

{% macro duckdb__round_double(expression, digits) -%}
    round(cast({{ expression }} as double), {{ digits }})
{%- endmacro %}
