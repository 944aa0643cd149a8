{{ config(tags=["consumers"]) }}

with

order_lines as (

    select * from {{ ref('stg_shop__order_lines') }}
    where is_demand

),

items as (

    select * from {{ ref('stg_shop__items') }}

),

final as (

    select
        order_lines.user_id,
        items.category_id,
        min(order_lines.order_date) as first_purchase_date,
        max(order_lines.order_date) as last_purchase_date,
        count(distinct order_lines.order_id) as orders,
        sum(order_lines.quantity) as units,
        {{ basketcast.round_double('sum(order_lines.line_revenue)', 2) }} as spend

    from order_lines
    inner join items
        on order_lines.item_id = items.item_id
    where items.category_id is not null
    group by order_lines.user_id, items.category_id

)

select * from final
