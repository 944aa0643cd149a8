{#-
    Every raw event row read, typed, with the reason it is rejected (null when clean).
    Incremental by event day: a run reloads the days from `reload_start_date` on (the newest
    day minus `events_lookback_days`, for late-arriving rows) and replaces them whole, so
    rerunning a day gives identical rows. Rows without a timestamp live on `missing_day()`.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='partition_date',
        on_schema_change='fail',
    )
}}

{%- set start_date = basketcast.reload_start_date('partition_date') %}
{%- set raw_columns = [
    'event_id', 'user_id', 'item_id', 'event_type', 'event_ts', 'session_id', 'quantity',
    'price', 'query_text',
] %}

with

source as (

    select * from {{ source('shop', 'events') }}
    {%- if start_date %}
    where event_ts >= {{ basketcast.utc_midnight("cast('" ~ start_date ~ "' as date)") }}
        or event_ts is null
    {%- endif %}

),

items as (

    select item_id from {{ ref('stg_shop__items') }}

),

typed as (

    select
        {{ basketcast.safe_cast('source.event_id', 'bigint') }} as event_id,
        {{ basketcast.safe_cast('source.user_id', 'bigint') }} as user_id,
        {{ basketcast.safe_cast('source.item_id', 'bigint') }} as item_id,
        lower(trim(source.event_type)) as event_type,
        {{ basketcast.safe_cast('source.event_ts', basketcast.type_timestamptz()) }} as event_ts,
        {{ basketcast.clean_text('source.session_id') }} as session_id,
        {{ basketcast.safe_cast('source.quantity', 'integer') }} as quantity,
        {{ basketcast.safe_cast('source.price', basketcast.type_double()) }} as price,
        {{ basketcast.clean_text('source.query_text') }} as query_text,
        {{ basketcast.payload_columns(raw_columns) }}

    from source

),

checked as (

    select
        typed.*,
        case
            when payload_event_id is null then 'missing event_id'
            when event_id is null then 'unparseable event_id'
            when payload_user_id is null then 'missing user_id'
            when user_id is null then 'unparseable user_id'
            when payload_event_ts is null then 'missing event_ts'
            when event_ts is null then 'unparseable event_ts'
            when event_ts > {{ basketcast.future_cutoff_ts() }} then 'event_ts in the future'
            when event_type is null
                or event_type not in ('view', 'cart', 'purchase', 'search', 'favorite')
                then 'unknown event_type'
            when event_type = 'search' and query_text is null then 'search without query'
            when payload_quantity is not null and quantity is null then 'unparseable quantity'
            when payload_price is not null and price is null then 'unparseable price'
            when event_type <> 'search' and payload_item_id is null then 'missing item_id'
            when event_type <> 'search' and typed.item_id is null then 'unparseable item_id'
            when event_type <> 'search' and items.item_id is null then 'unknown item_id'
            when event_type in ('cart', 'purchase') and quantity <= 0 then 'quantity not positive'
            when price < 0 then 'negative price'
        end as row_problem

    from typed
    left join items
        on typed.item_id = items.item_id

),

{% if start_date %}
kept_before as (

    -- Event ids already kept on days this run does not reload: a copy here is a repeat.
    select event_id
    from {{ this }}
    where partition_date < cast('{{ start_date }}' as date)
        and partition_date > {{ basketcast.missing_day() }}
        and rejection_reason is null

),
{% endif %}

{{ basketcast.rank_copies(
    'checked',
    ['event_id'],
    ['event_ts', 'user_id', 'item_id', 'event_type', 'session_id', 'quantity', 'price', 'query_text'],
) }},

flagged as (

    select
        ranked.*,
        {%- if start_date %}
        kept_before.event_id is not null as kept_before
        {%- else %}
        false as kept_before
        {%- endif %}

    from ranked
    {%- if start_date %}
    left join kept_before
        on ranked.event_id = kept_before.event_id
    {%- endif %}

),

final as (

    select
        event_id,
        user_id,
        case when event_type = 'search' then null else item_id end as item_id,
        event_type,
        event_ts,
        {{ basketcast.utc_date('event_ts') }} as event_date,
        coalesce({{ basketcast.utc_date('event_ts') }}, {{ basketcast.missing_day() }})
            as partition_date,
        session_id,
        case
            when event_type in ('cart', 'purchase') then coalesce(quantity, 1)
        end as quantity,
        case when event_type = 'search' then null else price end as price,
        case when event_type = 'search' then query_text end as query_text,
        case
            when event_type = 'search' then {{ basketcast.normalize_text('query_text') }}
        end as search_term,
        coalesce(
            row_problem,
            case
                when copy_number > 1 or kept_before then 'duplicate event_id'
            end
        ) as rejection_reason,
        case
            when row_problem is not null or copy_number > 1 or kept_before
                then {{ basketcast.json_payload(raw_columns, 'payload_') }}
        end as raw_payload,
        {{ basketcast.load_ts() }} as loaded_at

    from flagged

)

select * from final
