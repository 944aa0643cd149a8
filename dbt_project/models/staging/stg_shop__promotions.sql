with

source as (

    select * from {{ source('shop', 'promotions') }}

),

renamed as (

    select
        cast(item_id as bigint) as item_id,
        cast(start_date as date) as start_date,
        cast(end_date as date) as end_date,
        cast(discount_pct as {{ basketcast.type_double() }}) as discount_pct

    from source

),

validated as (

    select
        *,
        case
            when item_id is null then 'missing item_id'
            when start_date is null or end_date is null then 'missing dates'
            when end_date < start_date then 'ends before it starts'
            when discount_pct is null or discount_pct < 0 or discount_pct > 100
                then 'discount_pct outside 0-100'
        end as rejection_reason

    from renamed

),

ranked as (

    select
        *,
        row_number() over (
            partition by item_id, start_date, end_date, discount_pct
            order by item_id
        ) as row_in_key

    from validated
    where rejection_reason is null

),

final as (

    select
        item_id,
        start_date,
        end_date,
        discount_pct

    from ranked
    where row_in_key = 1

)

select * from final
