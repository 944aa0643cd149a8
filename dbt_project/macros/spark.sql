{#-
    Spark (dbt-spark) versions of the dialect helpers, beside their duckdb__/postgres__/default__
    versions in the other macro files. The Spark session runs in UTC
    (spark.sql.session.timeZone in profiles.yml), and Spark's TIMESTAMP is an instant shown in
    the session zone, so it stands for TIMESTAMPTZ.
-#}

{#-
    The raw input on Spark: each raw table is an external table of the `raw` schema over its
    Parquet files under $BASKETCAST_HOME/raw/<table>/, read in place like DuckDB reads them.
    Called on run start; a no-op on the other warehouses.
-#}
{% macro register_raw_sources() -%}
    {{ return(adapter.dispatch('register_raw_sources', 'basketcast')()) }}
{%- endmacro %}

{% macro default__register_raw_sources() -%}
    select 1
{%- endmacro %}

{% macro spark__register_raw_sources() -%}
    {%- set home = env_var('BASKETCAST_HOME', '.basketcast') -%}
    {%- set tables = ['events', 'order_lines', 'items', 'reviews', 'inventory_snapshots', 'promotions'] -%}
    {%- do run_query('create schema if not exists raw') -%}
    {%- for table in tables %}
        {%- do run_query('drop table if exists raw.' ~ table) -%}
        {%- do run_query(
            "create table raw." ~ table ~ " using parquet location '"
            ~ home ~ "/raw/" ~ table ~ "'"
        ) -%}
    {%- endfor %}
    select 1
{%- endmacro %}

{% macro spark__type_double() -%}
    double
{%- endmacro %}

{% macro spark__type_timestamptz() -%}
    timestamp
{%- endmacro %}

{% macro spark__round_double(expression, digits) -%}
    cast(round(cast({{ expression }} as decimal(38, 12)), {{ digits }}) as double)
{%- endmacro %}

{% macro spark__utc_date(expression) -%}
    to_date({{ expression }})
{%- endmacro %}

{% macro spark__utc_midnight(expression) -%}
    cast(cast({{ expression }} as date) as timestamp)
{%- endmacro %}

{% macro spark__epoch_seconds(expression) -%}
    cast(unix_micros({{ expression }}) as double) / 1000000.0
{%- endmacro %}

{% macro spark__median(expression) -%}
    percentile({{ expression }}, 0.5)
{%- endmacro %}

{% macro spark__json_payload(columns, prefix) -%}
    to_json(named_struct(
        {%- for column in columns %}
        '{{ column }}', {{ prefix ~ column }}{{ "," if not loop.last }}
        {%- endfor %}
    ))
{%- endmacro %}

{% macro spark__safe_cast(expression, type) -%}
    try_cast({{ expression }} as {{ type }})
{%- endmacro %}

{% macro spark__normalize_text(expression) -%}
    nullif(trim(regexp_replace(lower({{ expression }}), '[^a-z0-9]+', ' ')), '')
{%- endmacro %}

{% macro spark__date_spine(bounds, start_column, end_column) -%}
    select
        explode(sequence(
            cast({{ start_column }} as date),
            cast({{ end_column }} as date),
            interval 1 day
        )) as date_day
    from {{ bounds }}
    where {{ start_column }} <= {{ end_column }}
{%- endmacro %}

{#-
    Our incremental models replace whole days or slots (`delete+insert`). dbt-spark knows no
    such strategy; these overrides of its two strategy macros let a full build create those
    tables on Spark, and stop an incremental run with a clear message: replacing rows in place
    needs a table format with DELETE (Delta or Iceberg: file_format + the `merge` strategy).
-#}
{% macro dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format) %}
    {%- if raw_strategy not in ['append', 'merge', 'insert_overwrite', 'microbatch', 'delete+insert'] -%}
        {%- do exceptions.raise_compiler_error(
            'Invalid incremental strategy on Spark: ' ~ raw_strategy) -%}
    {%- endif -%}
    {%- if raw_strategy == 'merge' and file_format not in ['delta', 'iceberg', 'hudi'] -%}
        {%- do exceptions.raise_compiler_error(
            "The merge strategy on Spark needs file_format 'delta', 'iceberg' or 'hudi'") -%}
    {%- endif -%}
    {%- do return(raw_strategy) -%}
{% endmacro %}

{% macro dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates) %}
    {%- if strategy == 'delete+insert' -%}
        {%- do exceptions.raise_compiler_error(
            target ~ ' already exists and is delete+insert incremental: on Spark with Parquet '
            ~ 'tables rebuild it with `dbt build --full-refresh` (replacing rows in place needs '
            ~ 'Delta or Iceberg).') -%}
    {%- elif strategy == 'append' -%}
        {{ get_insert_into_sql(source, target) }}
    {%- elif strategy in ['insert_overwrite', 'microbatch'] -%}
        {{ get_insert_overwrite_sql(source, target, existing) }}
    {%- else -%}
        {{ get_merge_sql(target, source, unique_key, dest_columns=none, incremental_predicates=incremental_predicates) }}
    {%- endif -%}
{% endmacro %}

{#-
    Model contracts name DuckDB/Postgres types (double precision, varchar, timestamp with time
    zone). On Spark their names are translated where dbt casts to them, the model's query is
    kept as written (Spark does not take a WITH inside a parenthesised subquery), and the
    column check is by name and order only; the Spark parity test checks the values.
-#}
{% macro spark_data_type(data_type) -%}
    {%- set t = data_type | lower | trim -%}
    {%- set names = {
        'double precision': 'double', 'varchar': 'string', 'text': 'string',
        'timestamp with time zone': 'timestamp', 'timestamptz': 'timestamp',
        'integer': 'int', 'hugeint': 'decimal(38, 0)',
    } -%}
    {{- names.get(t, t) -}}
{%- endmacro %}

{% macro spark__get_empty_schema_sql(columns) -%}
    select
    {%- for i in columns %}
        {%- set col = columns[i] %}
        cast(null as {{ basketcast.spark_data_type(col['data_type']) }}) as {{ col['name'] }}{{ ", " if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{% macro spark__get_select_subquery(sql) -%}
    {{ sql }}
{%- endmacro %}

{% macro spark__get_assert_columns_equivalent(sql) -%}
    {%- set expected = model['columns'].keys() | map('lower') | list -%}
    {%- set actual = get_column_schema_from_query(sql) | map(attribute='name') | map('lower') | list -%}
    {%- if expected != actual -%}
        {%- do exceptions.raise_compiler_error(
            'Contract of ' ~ model['name'] ~ ' names columns ' ~ expected ~ ', the query gives ' ~ actual) -%}
    {%- endif -%}
{%- endmacro %}
