{#- Every raw review, typed, with the reason it is rejected (null when clean). -#}
{%- set raw_columns = ['review_id', 'user_id', 'item_id', 'rating', 'review_text', 'review_ts'] %}

with

source as (

    select * from {{ source('shop', 'reviews') }}

),

items as (

    select item_id from {{ ref('stg_shop__items') }}

),

typed as (

    select
        {{ basketcast.safe_cast('source.review_id', 'bigint') }} as review_id,
        {{ basketcast.safe_cast('source.user_id', 'bigint') }} as user_id,
        {{ basketcast.safe_cast('source.item_id', 'bigint') }} as item_id,
        {{ basketcast.safe_cast('source.rating', 'integer') }} as rating,
        {{ basketcast.clean_text('source.review_text') }} as review_text,
        {{ basketcast.safe_cast('source.review_ts', basketcast.type_timestamptz()) }} as review_ts,
        {{ basketcast.payload_columns(raw_columns) }}

    from source

),

checked as (

    select
        typed.*,
        case
            when payload_review_id is null then 'missing review_id'
            when review_id is null then 'unparseable review_id'
            when payload_item_id is null then 'missing item_id'
            when typed.item_id is null then 'unparseable item_id'
            when items.item_id is null then 'unknown item_id'
            when payload_review_ts is null then 'missing review_ts'
            when review_ts is null then 'unparseable review_ts'
            when review_ts > {{ basketcast.future_cutoff_ts() }} then 'review_ts in the future'
            when rating is null or rating < 1 or rating > 5 then 'rating outside 1-5'
        end as row_problem

    from typed
    left join items
        on typed.item_id = items.item_id

),

ranked as (

    select
        *,
        row_number() over (
            partition by review_id
            order by
                case when row_problem is null then 0 else 1 end,
                review_ts, user_id, item_id, rating
        ) as copy_number

    from checked

),

final as (

    select
        review_id,
        user_id,
        item_id,
        rating,
        review_text,
        review_ts,
        {{ basketcast.utc_date('review_ts') }} as review_date,
        {{ basketcast.quarantine_columns('duplicate review_id', ['review_id'], raw_columns) }}

    from ranked

)

select * from final
