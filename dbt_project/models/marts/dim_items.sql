with

items as (

    select * from {{ ref('stg_shop__items') }}

),

activity as (

    select * from {{ ref('int_item_daily_activity') }}

),

item_activity as (

    select
        item_id,
        min(activity_date) as first_activity_date,
        max(activity_date) as last_activity_date,
        min(case when units_sold > 0 then activity_date end) as first_sale_date,
        max(case when units_sold > 0 then activity_date end) as last_sale_date,
        sum(units_sold) as lifetime_units_sold

    from activity
    group by item_id

),

final as (

    select
        items.item_id,
        items.category_id,
        items.category_name,
        items.brand,
        items.title,
        items.base_price as list_price,
        items.launched_at,
        items.launch_date,
        item_activity.first_activity_date,
        item_activity.last_activity_date,
        item_activity.first_sale_date,
        item_activity.last_sale_date,
        cast(coalesce(item_activity.lifetime_units_sold, 0) as bigint) as lifetime_units_sold

    from items
    left join item_activity
        on items.item_id = item_activity.item_id

)

select * from final
