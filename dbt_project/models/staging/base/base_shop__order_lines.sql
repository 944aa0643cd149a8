{#- Every raw order line, typed, with the reason it is rejected (null when clean). -#}
{%- set raw_columns = [
    'order_id', 'user_id', 'item_id', 'quantity', 'unit_price', 'order_ts', 'status',
] %}

with

source as (

    select * from {{ source('shop', 'order_lines') }}

),

items as (

    select item_id from {{ ref('stg_shop__items') }}

),

typed as (

    select
        {{ basketcast.safe_cast('source.order_id', 'bigint') }} as order_id,
        {{ basketcast.safe_cast('source.user_id', 'bigint') }} as user_id,
        {{ basketcast.safe_cast('source.item_id', 'bigint') }} as item_id,
        {{ basketcast.safe_cast('source.quantity', 'integer') }} as quantity,
        {{ basketcast.safe_cast('source.unit_price', basketcast.type_double()) }} as unit_price,
        {{ basketcast.safe_cast('source.order_ts', basketcast.type_timestamptz()) }} as order_ts,
        lower(trim(source.status)) as status,
        {{ basketcast.payload_columns(raw_columns) }}

    from source

),

checked as (

    select
        typed.*,
        case
            when payload_order_id is null then 'missing order_id'
            when order_id is null then 'unparseable order_id'
            when payload_item_id is null then 'missing item_id'
            when typed.item_id is null then 'unparseable item_id'
            when payload_user_id is null then 'missing user_id'
            when user_id is null then 'unparseable user_id'
            when payload_order_ts is null then 'missing order_ts'
            when order_ts is null then 'unparseable order_ts'
            when order_ts > {{ basketcast.future_cutoff_ts() }} then 'order_ts in the future'
            when items.item_id is null then 'unknown item_id'
            when payload_quantity is not null and quantity is null then 'unparseable quantity'
            when quantity is null or quantity <= 0 then 'quantity not positive'
            when payload_unit_price is not null and unit_price is null
                then 'unparseable unit_price'
            when unit_price < 0 then 'negative unit_price'
            when status is null or status not in ('completed', 'cancelled', 'returned')
                then 'unknown status'
        end as row_problem

    from typed
    left join items
        on typed.item_id = items.item_id

),

ranked as (

    select
        *,
        row_number() over (
            partition by order_id, item_id
            order by
                case when row_problem is null then 0 else 1 end,
                order_ts, status, user_id, quantity, unit_price
        ) as copy_number

    from checked

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
        status <> 'cancelled' as is_demand,
        status = 'returned' as is_returned,
        {{ basketcast.quarantine_columns('duplicate order line', ['order_id', 'item_id'], raw_columns) }}

    from ranked

)

select * from final
