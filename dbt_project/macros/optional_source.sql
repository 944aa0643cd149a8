{#-
    A raw table that a shop may not have (`campaigns`): the source when its data is there, else
    an empty relation with the same typed columns, so every model builds without it. On DuckDB
    "there" means the source's Parquet folder holds a file; elsewhere, that the table exists.
    `columns` is a list of (name, type) pairs. Use it after FROM.
-#}
{% macro optional_source(source_name, table_name, columns) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if basketcast.optional_source_present(source_name, table_name) -%}
        {{ relation }}
    {%- else -%}
        (
            select
            {%- for name, type in columns %}
                cast(null as {{ type }}) as {{ name }}{{ "," if not loop.last }}
            {%- endfor %}
            where 1 = 0
        ) as empty_{{ table_name }}
    {%- endif -%}
{%- endmacro %}

{% macro optional_source_present(source_name, table_name) -%}
    {%- if not execute -%}
        {{ return(true) }}
    {%- endif -%}
    {{ return(adapter.dispatch('optional_source_present', 'basketcast')(source_name, table_name)) }}
{%- endmacro %}

{% macro default__optional_source_present(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- set found = adapter.get_relation(
        database=relation.database, schema=relation.schema, identifier=relation.identifier
    ) -%}
    {{ return(found is not none) }}
{%- endmacro %}

{% macro duckdb__optional_source_present(source_name, table_name) -%}
    {%- set folder = env_var('BASKETCAST_HOME', '.basketcast') ~ '/raw/' ~ table_name -%}
    {%- set sql -%}
        select count(*) from glob('{{ folder }}/*.parquet')
    {%- endset -%}
    {{ return(run_query(sql).columns[0].values()[0] > 0) }}
{%- endmacro %}
