with

source as (

    select * from {{ source('shop', 'reviews') }}

),

renamed as (

    select
        cast(review_id as bigint) as review_id,
        cast(user_id as bigint) as user_id,
        cast(item_id as bigint) as item_id,
        cast(rating as integer) as rating,
        {{ basketcast.clean_text('review_text') }} as review_text,
        cast(review_ts as {{ basketcast.type_timestamptz() }}) as review_ts

    from source

),

validated as (

    select
        *,
        case
            when review_id is null then 'missing review_id'
            when item_id is null then 'missing item_id'
            when review_ts is null then 'missing review_ts'
            when rating is null or rating < 1 or rating > 5 then 'rating outside 1-5'
        end as rejection_reason

    from renamed

),

ranked as (

    select
        *,
        row_number() over (
            partition by review_id
            order by review_ts, user_id, item_id
        ) as row_in_key

    from validated
    where rejection_reason is null

),

final as (

    select
        review_id,
        user_id,
        item_id,
        rating,
        review_text,
        review_ts,
        {{ basketcast.utc_date('review_ts') }} as review_date

    from ranked
    where row_in_key = 1

)

select * from final
