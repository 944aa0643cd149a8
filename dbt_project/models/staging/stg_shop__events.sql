{{ config(materialized='table') }}

with

source as (

    select * from {{ source('shop', 'events') }}

),

renamed as (

    select
        cast(event_id as bigint) as event_id,
        cast(user_id as bigint) as user_id,
        cast(item_id as bigint) as item_id,
        lower(trim(event_type)) as event_type,
        cast(event_ts as {{ basketcast.type_timestamptz() }}) as event_ts,
        {{ basketcast.clean_text('session_id') }} as session_id,
        cast(quantity as integer) as quantity,
        cast(price as {{ basketcast.type_double() }}) as price,
        {{ basketcast.clean_text('query_text') }} as query_text

    from source

),

validated as (

    select
        *,
        case
            when event_id is null then 'missing event_id'
            when user_id is null then 'missing user_id'
            when event_ts is null then 'missing event_ts'
            when event_type not in ('view', 'cart', 'purchase', 'search', 'favorite')
                or event_type is null then 'unknown event_type'
            when event_type = 'search' and query_text is null then 'search without query'
            when event_type <> 'search' and item_id is null then 'missing item_id'
            when quantity < 0 then 'negative quantity'
            when price < 0 then 'negative price'
        end as rejection_reason

    from renamed

),

ranked as (

    select
        *,
        row_number() over (
            partition by event_id
            order by event_ts, user_id, item_id, session_id
        ) as row_in_key

    from validated
    where rejection_reason is null

),

final as (

    select
        event_id,
        user_id,
        case when event_type = 'search' then null else item_id end as item_id,
        event_type,
        event_ts,
        {{ basketcast.utc_date('event_ts') }} as event_date,
        session_id,
        case
            when event_type in ('cart', 'purchase') then coalesce(quantity, 1)
        end as quantity,
        case when event_type = 'search' then null else price end as price,
        case when event_type = 'search' then query_text end as query_text,
        case
            when event_type = 'search' then {{ basketcast.normalize_text('query_text') }}
        end as search_term

    from ranked
    where row_in_key = 1

)

select * from final
