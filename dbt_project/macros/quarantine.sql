{#-
    Helpers of the quarantine: staging keeps every raw row it reads, tags the bad ones with a
    `rejection_reason`, and `audit.rejected_rows` keeps those rows as JSON text.
-#}

{#- The raw row as JSON text: one key per name in `columns`, read from `prefix ~ name`. -#}
{% macro json_payload(columns, prefix='') -%}
    {{ return(adapter.dispatch('json_payload', 'basketcast')(columns, prefix)) }}
{%- endmacro %}

{% macro default__json_payload(columns, prefix) -%}
    cast(json_build_object(
        {%- for column in columns %}
        '{{ column }}', {{ prefix ~ column }}{{ "," if not loop.last }}
        {%- endfor %}
    ) as {{ dbt.type_string() }})
{%- endmacro %}

{% macro duckdb__json_payload(columns, prefix) -%}
    cast(json_object(
        {%- for column in columns %}
        '{{ column }}', {{ prefix ~ column }}{{ "," if not loop.last }}
        {%- endfor %}
    ) as varchar)
{%- endmacro %}

{#-
    A cast that gives null instead of failing when the value cannot be parsed, so the row can
    be quarantined as 'unparseable'. Postgres has no such cast; its raw tables are loaded
    typed (ml_jobs.ingest.postgres), so a plain cast cannot fail there.
-#}
{% macro safe_cast(expression, type) -%}
    {{ return(adapter.dispatch('safe_cast', 'basketcast')(expression, type)) }}
{%- endmacro %}

{% macro default__safe_cast(expression, type) -%}
    cast({{ expression }} as {{ type }})
{%- endmacro %}

{% macro duckdb__safe_cast(expression, type) -%}
    try_cast({{ expression }} as {{ type }})
{%- endmacro %}

{#- When this dbt invocation started, as a TIMESTAMPTZ literal: the `loaded_at` of a load. -#}
{% macro load_ts() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}+00:00' as {{ basketcast.type_timestamptz() }})
{%- endmacro %}

{#-
    Timestamps later than this are rejected as 'in the future': the load time plus the
    `future_tolerance_hours` var (clock skew between the shop's servers and the warehouse).
-#}
{% macro future_cutoff_ts() -%}
    {%- set cutoff = run_started_at + modules.datetime.timedelta(hours=var('future_tolerance_hours') | int) -%}
    cast('{{ cutoff.strftime("%Y-%m-%d %H:%M:%S") }}+00:00' as {{ basketcast.type_timestamptz() }})
{%- endmacro %}

{#- Day of a row whose timestamp is missing, so delete+insert can still address it. -#}
{% macro missing_day() -%}
    cast('1970-01-01' as date)
{%- endmacro %}

{#-
    First day an incremental model reloads: `reload_from` (var, a date) when given, else the
    model's newest day with a clean row minus `events_lookback_days` (rows rejected as in the
    future do not count). None on a full build.
-#}
{% macro reload_start_date(date_column, clean_only=true) -%}
    {%- if not is_incremental() or not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if var('reload_from', none) -%}
        {{ return(var('reload_from') | string) }}
    {%- endif -%}
    {%- set sql -%}
        select cast({{ dbt.dateadd('day', -(var('events_lookback_days') | int), 'max(' ~ date_column ~ ')') }} as date)
        from {{ this }}
        where {{ date_column }} > {{ basketcast.missing_day() }}
        {%- if clean_only %}
            and rejection_reason is null
        {%- endif %}
    {%- endset -%}
    {%- set newest = run_query(sql).columns[0].values()[0] -%}
    {{ return(newest | string if newest else '1970-01-02') }}
{%- endmacro %}

{#-
    Two CTEs, `repeated_keys` and `ranked`: the rows of `relation` with `copy_number`, their
    place among the rows sharing the natural key `key_columns` (clean rows first, then by
    `order_columns`); repeats after the first are rejected as duplicates. Only keys read more
    than once need a window: every other row is a first copy, found by one hash aggregate
    instead of a sort of every row. Rows with a null key part are first copies (they are
    rejected for the missing key anyway).
-#}
{% macro rank_copies(relation, key_columns, order_columns) -%}
repeated_keys as (

    select {{ key_columns | join(', ') }}
    from {{ relation }}
    where {% for key in key_columns %}{{ key }} is not null{{ " and " if not loop.last }}{% endfor %}
    group by {{ key_columns | join(', ') }}
    having count(*) > 1

),

ranked as (

    select
        {{ relation }}.*,
        1 as copy_number

    from {{ relation }}
    left join repeated_keys
        on {% for key in key_columns %}{{ relation }}.{{ key }} = repeated_keys.{{ key }}{{ "\n        and " if not loop.last }}{% endfor %}
    where repeated_keys.{{ key_columns[0] }} is null

    union all

    select
        {{ relation }}.*,
        row_number() over (
            partition by {% for key in key_columns %}{{ relation }}.{{ key }}{{ ", " if not loop.last }}{% endfor %}
            order by
                case when {{ relation }}.row_problem is null then 0 else 1 end
                {%- for column in order_columns %},
                {{ relation }}.{{ column }}
                {%- endfor %}
        ) as copy_number

    from {{ relation }}
    inner join repeated_keys
        on {% for key in key_columns %}{{ relation }}.{{ key }} = repeated_keys.{{ key }}{{ "\n        and " if not loop.last }}{% endfor %}

)
{%- endmacro %}

{#-
    The raw columns kept as text beside their typed versions, `payload_<name>`: what
    `quarantine_columns` writes to the quarantine when a row is rejected.
-#}
{% macro payload_columns(columns, relation='source') -%}
    {%- for column in columns %}
        {{ relation ~ '.' if relation }}{{ column }} as payload_{{ column }}{{ "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{#-
    The four quarantine columns of a base_shop__* model, read from its `ranked` CTE (a
    `row_problem` column and rank_copies' `copy_number`):
    - rejection_reason: the row's problem, else `duplicate_reason` for a repeat of a kept row;
    - natural_key: the `key_columns` as text, joined by '/';
    - raw_payload: the raw row as JSON, only for rejected rows;
    - loaded_at.
-#}
{% macro quarantine_columns(duplicate_reason, key_columns, raw_columns) -%}
        coalesce(
            row_problem,
            case when copy_number > 1 then '{{ duplicate_reason }}' end
        ) as rejection_reason,
        {% if key_columns | length == 1 -%}
        cast({{ key_columns[0] }} as {{ dbt.type_string() }}) as natural_key,
        {%- else -%}
        concat(
            {%- for column in key_columns %}
            cast({{ column }} as {{ dbt.type_string() }}){{ ", '/'," if not loop.last }}
            {%- endfor %}
        ) as natural_key,
        {%- endif %}
        case
            when row_problem is not null or copy_number > 1
                then {{ basketcast.json_payload(raw_columns, 'payload_') }}
        end as raw_payload,
        {{ basketcast.load_ts() }} as loaded_at
{%- endmacro %}
