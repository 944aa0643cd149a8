{#-
    One row per raw table per load (dbt invocation): rows read from the source, rows kept
    clean by staging, rows quarantined. The `reconciles` test fails the build when
    rows_in <> rows_clean + rows_rejected for the newest load. Appended, never rewritten, so
    the table is the history of every load.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    full_refresh=basketcast.append_history_full_refresh(),
) }}

{%- set tables = [
    'events', 'order_lines', 'items', 'reviews', 'inventory_snapshots', 'promotions',
    'campaigns',
] %}

with

rejected as (

    select
        source_table,
        count(*) as rows_rejected,
        sum(case when rejection_reason like 'duplicate%' then 1 else 0 end) as rows_duplicate

    from {{ ref('rejected_rows') }}
    group by source_table

),

counts as (

    {% for table in tables %}
    select
        '{{ table }}' as source_table,
        {%- if table == 'campaigns' %}
        (select count(*) from {{ basketcast.optional_source('shop', table, basketcast.campaign_columns()) }}) as rows_in,
        {%- else %}
        (select count(*) from {{ source('shop', table) }}) as rows_in,
        {%- endif %}
        (select count(*) from {{ ref('stg_shop__' ~ table) }}) as rows_clean
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

final as (

    select
        '{{ invocation_id }}' as load_id,
        {{ basketcast.load_ts() }} as loaded_at,
        counts.source_table,
        cast(counts.rows_in as bigint) as rows_in,
        cast(counts.rows_clean as bigint) as rows_clean,
        cast(coalesce(rejected.rows_rejected, 0) as bigint) as rows_rejected,
        cast(coalesce(rejected.rows_duplicate, 0) as bigint) as rows_duplicate

    from counts
    left join rejected
        on counts.source_table = rejected.source_table

)

select * from final
