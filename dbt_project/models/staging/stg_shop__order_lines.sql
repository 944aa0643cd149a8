with

source as (

    select * from {{ source('shop', 'order_lines') }}

),

renamed as (

    select
        cast(order_id as bigint) as order_id,
        cast(user_id as bigint) as user_id,
        cast(item_id as bigint) as item_id,
        cast(quantity as integer) as quantity,
        cast(unit_price as {{ basketcast.type_double() }}) as unit_price,
        cast(order_ts as {{ basketcast.type_timestamptz() }}) as order_ts,
        lower(trim(status)) as status

    from source

),

validated as (

    select
        *,
        case
            when order_id is null then 'missing order_id'
            when item_id is null then 'missing item_id'
            when user_id is null then 'missing user_id'
            when order_ts is null then 'missing order_ts'
            when quantity is null or quantity <= 0 then 'quantity not positive'
            when unit_price < 0 then 'negative unit_price'
            when status not in ('completed', 'cancelled', 'returned')
                or status is null then 'unknown status'
        end as rejection_reason

    from renamed

),

ranked as (

    select
        *,
        row_number() over (
            partition by order_id, item_id
            order by order_ts, status
        ) as row_in_key

    from validated
    where rejection_reason is null

),

final as (

    select
        order_id,
        item_id,
        user_id,
        quantity,
        unit_price,
        quantity * unit_price as line_revenue,
        order_ts,
        {{ basketcast.utc_date('order_ts') }} as order_date,
        status,
        status <> 'cancelled' as is_demand

    from ranked
    where row_in_key = 1

)

select * from final
