{#-
    All timestamps are UTC. These helpers never depend on the session time zone.
-#}

{#- The UTC calendar day of a TIMESTAMPTZ. -#}
{% macro utc_date(expression) -%}
    {{ return(adapter.dispatch('utc_date', 'basketcast')(expression)) }}
{%- endmacro %}

{% macro default__utc_date(expression) -%}
    cast(({{ expression }}) at time zone 'UTC' as date)
{%- endmacro %}

{#- Midnight UTC at the start of a DATE, as a TIMESTAMPTZ. -#}
{% macro utc_midnight(expression) -%}
    {{ return(adapter.dispatch('utc_midnight', 'basketcast')(expression)) }}
{%- endmacro %}

{% macro default__utc_midnight(expression) -%}
    (cast({{ expression }} as timestamp) at time zone 'UTC')
{%- endmacro %}

{#- Seconds since 1970-01-01 UTC of a TIMESTAMPTZ, as a number. -#}
{% macro epoch_seconds(expression) -%}
    {{ return(adapter.dispatch('epoch_seconds', 'basketcast')(expression)) }}
{%- endmacro %}

{% macro default__epoch_seconds(expression) -%}
    extract(epoch from {{ expression }})
{%- endmacro %}

{% macro duckdb__epoch_seconds(expression) -%}
    epoch({{ expression }})
{%- endmacro %}
