{#-
    A select of one row per calendar day (`date_day`) for each row of `bounds` (a relation or
    CTE), from its `start_column` to its `end_column`, both inclusive. Databases with a series
    function use it; the default is a recursive CTE, which most warehouses accept.
-#}
{% macro date_spine(bounds, start_column, end_column) -%}
    {{ return(adapter.dispatch('date_spine', 'basketcast')(bounds, start_column, end_column)) }}
{%- endmacro %}

{% macro default__date_spine(bounds, start_column, end_column) -%}
    with recursive spine as (
        select
            cast({{ start_column }} as date) as date_day,
            cast({{ end_column }} as date) as end_day
        from {{ bounds }}
        where {{ start_column }} <= {{ end_column }}
        union all
        select
            cast({{ dbt.dateadd('day', 1, 'date_day') }} as date) as date_day,
            end_day
        from spine
        where date_day < end_day
    )
    select date_day from spine
{%- endmacro %}

{% macro duckdb__date_spine(bounds, start_column, end_column) -%}
    select
        cast(unnest(generate_series(
            cast({{ start_column }} as date),
            cast({{ end_column }} as date),
            interval 1 day
        )) as date) as date_day
    from {{ bounds }}
    where {{ start_column }} <= {{ end_column }}
{%- endmacro %}

{% macro postgres__date_spine(bounds, start_column, end_column) -%}
    select
        cast(series.day as date) as date_day
    from {{ bounds }} as b
    cross join lateral generate_series(
        cast(b.{{ start_column }} as timestamp),
        cast(b.{{ end_column }} as timestamp),
        interval '1 day'
    ) as series(day)
{%- endmacro %}
