{#-
    A view: the rejected rows live in the staging base models (tagged with their reason), so
    the quarantine costs nothing to build and never goes stale.
-#}
{{ config(materialized='view') }}

{%- set tables = [
    'events', 'order_lines', 'items', 'reviews', 'inventory_snapshots', 'promotions',
    'campaigns',
] %}

with

{% for table in tables %}
{{ table }} as (

    select
        '{{ table }}' as source_table,
        {%- if table == 'events' %}
        cast(event_id as {{ dbt.type_string() }}) as natural_key,
        {%- else %}
        natural_key,
        {%- endif %}
        rejection_reason,
        raw_payload,
        loaded_at

    from {{ ref('base_shop__' ~ table) }}
    where rejection_reason is not null

),

{% endfor %}

unioned as (

    {% for table in tables %}
    select * from {{ table }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

)

select * from unioned
