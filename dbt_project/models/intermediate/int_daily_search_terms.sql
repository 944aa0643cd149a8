{#-
    Incremental by search day like the daily activity models: the days from
    `reload_start_date` on are rebuilt and replaced whole (delete+insert on search_date).
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='search_date',
        on_schema_change='fail',
    )
}}

{%- set start_date = basketcast.reload_start_date('search_date', clean_only=false) %}

with

searches as (

    select * from {{ ref('stg_shop__events') }}
    where event_type = 'search'
        and search_term is not null
    {%- if start_date %}
        and event_date >= cast('{{ start_date }}' as date)
    {%- endif %}

),

final as (

    select
        search_term,
        cast(event_date as date) as search_date,
        cast(count(*) as bigint) as searches,
        cast(count(distinct user_id) as bigint) as searching_users

    from searches
    group by search_term, event_date

)

select * from final
