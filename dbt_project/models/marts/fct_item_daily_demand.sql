{#-
    Incremental by day: a run rebuilds the days from `reload_start_date` on (this table's
    newest day minus `events_lookback_days`, or `reload_from`) for every item, plus every day
    of items the table does not hold yet (new to the catalogue), and replaces those
    (item_id, demand_date) rows (delete+insert), so a rerun writes identical rows. Changes to
    older days (late stock counts, edited promotions) need `reload_from` or --full-refresh.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['item_id', 'demand_date'],
        on_schema_change='fail',
    )
}}

{%- set start_date = basketcast.reload_start_date('demand_date', clean_only=false) %}

with

spine as (

    select * from {{ ref('int_date_spine') }}

),

items as (

    select * from {{ ref('stg_shop__items') }}

),

activity as (

    select * from {{ ref('int_item_daily_activity') }}

),

promotions as (

    select * from {{ ref('stg_shop__promotions') }}

),

snapshots as (

    select * from {{ ref('stg_shop__inventory_snapshots') }}

),

category_searches as (

    select * from {{ ref('int_category_daily_searches') }}

),

data_window as (

    select min(first_day) as first_day, max(last_day) as last_day from spine

),

first_activity as (

    select
        item_id,
        min(activity_date) as first_activity_date

    from activity
    group by item_id

),

item_bounds as (

    -- An item's days start when it is on sale in the window (launch, or the first day of
    -- data for older items), or earlier if it sold before its recorded launch; items without
    -- a launch date start at their first activity.
    select
        items.item_id,
        items.category_id,
        items.base_price,
        case
            when items.launch_date is null
                then coalesce(first_activity.first_activity_date, data_window.first_day)
            when first_activity.first_activity_date < items.launch_date
                then first_activity.first_activity_date
            when items.launch_date > data_window.first_day then items.launch_date
            else data_window.first_day
        end as start_day,
        data_window.last_day as end_day

    from items
    cross join data_window
    left join first_activity
        on items.item_id = first_activity.item_id

),

{%- if start_date %}

known_items as (

    select distinct item_id from {{ this }}

),
{%- endif %}

item_days as (

    select
        item_bounds.item_id,
        item_bounds.category_id,
        item_bounds.base_price,
        spine.date_day

    from item_bounds
    inner join spine
        on spine.date_day >= item_bounds.start_day
        and spine.date_day <= item_bounds.end_day
    {%- if start_date %}
    left join known_items
        on item_bounds.item_id = known_items.item_id
    where spine.date_day >= cast('{{ start_date }}' as date)
        or known_items.item_id is null
    {%- endif %}

),

daily_promotions as (

    select
        item_days.item_id,
        item_days.date_day,
        max(promotions.discount_pct) as discount_pct

    from item_days
    inner join promotions
        on item_days.item_id = promotions.item_id
        and item_days.date_day >= promotions.start_date
        and item_days.date_day <= promotions.end_date
    group by item_days.item_id, item_days.date_day

),

joined as (

    select
        item_days.item_id,
        item_days.date_day,
        item_days.category_id,
        item_days.base_price,
        coalesce(activity.units_sold, 0) as units_sold,
        coalesce(activity.order_count, 0) as order_count,
        coalesce(activity.revenue, 0) as revenue,
        coalesce(activity.views, 0) as views,
        coalesce(activity.carts, 0) as carts,
        coalesce(activity.favorites, 0) as favorites,
        coalesce(category_searches.category_searches, 0) as category_searches,
        case
            when activity.units_sold > 0 then activity.revenue / activity.units_sold
        end as paid_price,
        daily_promotions.discount_pct,
        snapshots.on_hand

    from item_days
    left join activity
        on item_days.item_id = activity.item_id
        and item_days.date_day = activity.activity_date
    left join daily_promotions
        on item_days.item_id = daily_promotions.item_id
        and item_days.date_day = daily_promotions.date_day
    left join snapshots
        on item_days.item_id = snapshots.item_id
        and item_days.date_day = snapshots.snapshot_date
    left join category_searches
        on item_days.category_id = category_searches.category_id
        and item_days.date_day = category_searches.search_date

),

final as (

    select
        cast(item_id as bigint) as item_id,
        cast(date_day as date) as demand_date,
        cast(category_id as bigint) as category_id,
        cast(units_sold as bigint) as units_sold,
        cast(order_count as bigint) as order_count,
        -- Rounded to the cent: parallel sums differ in the last bit from run to run, and a
        -- rebuild of the same day must give the same table.
        {{ basketcast.round_double('revenue', 2) }} as revenue,
        cast(views as bigint) as views,
        cast(carts as bigint) as carts,
        cast(favorites as bigint) as favorites,
        cast(category_searches as bigint) as category_searches,
        {{ basketcast.round_double(
            'coalesce(paid_price, base_price * (1 - coalesce(discount_pct, 0) / 100.0))', 4
        ) }} as price,
        cast(base_price as {{ basketcast.type_double() }}) as list_price,
        cast(coalesce(discount_pct, 0) as {{ basketcast.type_double() }}) as discount_pct,
        discount_pct is not null as is_promo,
        cast(on_hand as integer) as on_hand,
        coalesce(on_hand = 0, false) as is_stockout

    from joined

)

select * from final
