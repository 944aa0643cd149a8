{#-
    The feature exports (marts.user_features, marts.item_features) on DuckDB: each model is a
    view over its stored snapshots, and its post-hook writes the rows to Parquet, one file per
    month of feature_ts (UTC):

        $BASKETCAST_HOME/exports/<name>/<YYYY-MM>.parquet

    Readers take the glob exports/<name>/*.parquet (Feast's FileSource, ml_jobs). A run only
    rewrites the months its snapshot models can have changed, so a one-day load writes one or
    two months instead of the whole history:
    - full refresh, or no export yet: the folder is emptied (COPY ... OVERWRITE leaves one
      zero-row file, `empty_0.parquet`, which keeps the schema readable when there are no
      snapshots at all) and every month is written;
    - otherwise: the months from the newest exported feature_ts minus `events_lookback_days`
      (or from `reload_from`) on, the snapshot days the snapshot models rebuilt. A month file
      whose rows are gone is rewritten empty; DuckDB cannot delete a file.
    Each month is one COPY to a fixed file name, its rows ordered by feature_ts and the entity
    key, so writing the same rows again gives the same file. The newest export decides what
    is rewritten (not the snapshot table), so an export that failed after its snapshots were
    stored is caught up by the next run.
-#}
{% macro feature_export_hooks(name, key) -%}
    {%- if target.type != 'duckdb' -%}
        {{ return([]) }}
    {%- endif -%}
    {#- Rendered when the hook runs, after the view exists, not when the project is parsed. -#}
    {{ return(["{{ basketcast.write_feature_export('" ~ name ~ "', '" ~ key ~ "') }}"]) }}
{%- endmacro %}

{#- The statements that bring exports/<name>/ up to date with `this` (see above). -#}
{% macro write_feature_export(name, key) -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set folder = env_var('BASKETCAST_HOME', '.basketcast') ~ '/exports/' ~ name -%}
    {%- set files = folder ~ '/*.parquet' -%}
    {%- set month_of = "strftime(timezone('UTC', feature_ts), '%Y-%m')" -%}
    {%- set start_month = none if flags.FULL_REFRESH else basketcast.export_start_month(files) -%}
    {%- set statements = [] -%}

    {%- if start_month is none -%}
        {%- do statements.append(
            "copy (select * from " ~ this ~ " limit 0) to '" ~ folder ~ "'"
            ~ " (format parquet, per_thread_output true, overwrite true, filename_pattern 'empty_{i}')"
        ) -%}
        {%- set months_sql = "select distinct " ~ month_of ~ " as month from " ~ this -%}
    {%- else -%}
        {#- The months from start_month on: those with rows, and those with a file to empty. -#}
        {%- set months_sql -%}
            select distinct {{ month_of }} as month
            from {{ this }}
            where feature_ts >= cast('{{ start_month }}-01 00:00:00+00' as timestamptz)
            union
            select regexp_extract(file, '(\d{4}-\d{2})\.parquet$', 1) as month
            from glob('{{ files }}')
            where regexp_extract(file, '(\d{4}-\d{2})\.parquet$', 1) >= '{{ start_month }}'
        {%- endset -%}
    {%- endif -%}

    {%- for month in run_query(months_sql ~ " order by month").columns[0].values() -%}
        {%- set first = "cast('" ~ month ~ "-01 00:00:00+00' as timestamptz)" -%}
        {%- do statements.append(
            "copy (select * from " ~ this
            ~ " where feature_ts >= " ~ first ~ " and feature_ts < " ~ first ~ " + interval 1 month"
            ~ " order by feature_ts, " ~ key ~ ") to '" ~ folder ~ "/" ~ month ~ ".parquet'"
            ~ " (format parquet)"
        ) -%}
    {%- endfor -%}
    {{ return(statements | join(';\n')) }}
{%- endmacro %}

{#-
    First month ('YYYY-MM') an incremental export rewrites: that of the newest exported
    feature_ts minus `events_lookback_days`, or of `reload_from` when that is earlier; none
    when nothing is exported yet (everything is written).
-#}
{% macro export_start_month(files) -%}
    {%- set found = run_query("select count(*) from glob('" ~ files ~ "')").columns[0].values()[0] -%}
    {%- if found == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set newest_sql -%}
        select cast(timezone('UTC', max(feature_ts)) as date) from read_parquet('{{ files }}')
    {%- endset -%}
    {%- set newest = run_query(newest_sql).columns[0].values()[0] -%}
    {%- if newest is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set start = newest - modules.datetime.timedelta(days=var('events_lookback_days') | int) -%}
    {%- if var('reload_from', none) -%}
        {%- set start = [start, modules.datetime.date.fromisoformat(var('reload_from') | string)] | min -%}
    {%- endif -%}
    {{ return(start.strftime('%Y-%m')) }}
{%- endmacro %}
