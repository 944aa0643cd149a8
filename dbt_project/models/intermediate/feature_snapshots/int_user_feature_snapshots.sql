{#-
    The user feature snapshots, stored for the export `user_features`. Incremental by
    snapshot slot (the folder's config in dbt_project.yml): a run computes only the snapshot
    days `snapshots_to_build()` returns and replaces their slots. The windows are summed one
    of two ways, `feature_window_method()`: running sums over a gapless user-day calendar on a
    full daily build, a join of each snapshot to the days it sees otherwise (few snapshots).
-#}

{%- set active_days = var('feature_active_days') | int %}
{%- set method = basketcast.feature_window_method() %}
{#- The daily measures both ways carry from fct_user_daily_activity. -#}
{%- set activity_columns = ['views', 'carts', 'purchases', 'spend', 'orders', 'units', 'last_purchase_ts'] %}

with

snapshots as (

    {{ basketcast.snapshots_to_build() }}

),

activity as (

    select * from {{ ref('fct_user_daily_activity') }}

),

category_activity as (

    select * from {{ ref('int_user_daily_category_activity') }}

),

{% if method == 'running' %}

-- A gapless calendar over the windows of the snapshots to build and their days.
{{ basketcast.feature_grid_days() }},

user_spans as (

    select
        user_id,
        min(activity_date) as first_activity_date,
        max(activity_date) as last_activity_date

    from activity
    group by user_id

),

user_days as (

    -- One row per user and calendar day, from the user's first activity day to the last day
    -- whose window still sees the user's last activity day; null measures on idle days.
    select
        user_spans.user_id,
        grid_days.grid_date,
        case when activity.activity_date is null then 0 else 1 end as is_active,
        {%- for column in activity_columns %}
        activity.{{ column }}{{ "," if not loop.last }}
        {%- endfor %}

    from user_spans
    inner join grid_days
        on grid_days.grid_date >= user_spans.first_activity_date
        and grid_days.grid_date <= cast({{ dbt.dateadd(
            'day', active_days, 'user_spans.last_activity_date'
        ) }} as date)
    left join activity
        on activity.user_id = user_spans.user_id
        and activity.activity_date = grid_days.grid_date

),

rolled as (

    -- Each day D sees the user's days from D - 90 to D - 1 (rows of the gapless calendar),
    -- nothing from D itself: window sums over one row per user-day, instead of a join that
    -- copies every activity day into each of the 90 snapshots that see it.
    select
        user_id,
        grid_date,
        sum(is_active) over days_active as active_days,
        sum(views) over days_7 as views_7d,
        sum(carts) over days_7 as carts_7d,
        sum(purchases) over days_7 as purchases_7d,
        sum(views) over days_28 as views_28d,
        sum(carts) over days_28 as carts_28d,
        sum(purchases) over days_28 as purchases_28d,
        sum(is_active) over days_28 as active_days_28d,
        sum(purchases) over days_active as purchases_90d,
        sum(views) over days_active as views_90d,
        sum(carts) over days_active as carts_90d,
        sum(orders) over days_active as orders_90d,
        sum(units) over days_active as units_90d,
        sum(spend) over days_active as spend_90d,
        max(last_purchase_ts) over days_active as last_purchase_ts

    from user_days
    {{ basketcast.feature_windows('user_id') }}

),

aggregated as (

    -- A user gets a snapshot row when active in the window before it.
    select
        rolled.user_id,
        snapshots.feature_ts,
        snapshots.snapshot_slot,
        coalesce(rolled.views_7d, 0) as views_7d,
        coalesce(rolled.carts_7d, 0) as carts_7d,
        coalesce(rolled.purchases_7d, 0) as purchases_7d,
        coalesce(rolled.views_28d, 0) as views_28d,
        coalesce(rolled.carts_28d, 0) as carts_28d,
        coalesce(rolled.purchases_28d, 0) as purchases_28d,
        rolled.purchases_90d,
        rolled.views_90d,
        rolled.carts_90d,
        rolled.orders_90d,
        rolled.units_90d,
        rolled.spend_90d,
        rolled.last_purchase_ts,
        coalesce(rolled.active_days_28d, 0) as active_days_28d

    from snapshots
    inner join rolled
        on rolled.grid_date = snapshots.snapshot_date
    where rolled.active_days > 0

),

{% else %}

windowed as (

    -- Each snapshot D sees a user's days from D - 90 to D - 1: nothing from D itself. One
    -- row per activity day and snapshot that sees it: few when few snapshots are built.
    select
        snapshots.snapshot_slot,
        snapshots.feature_ts,
        activity.user_id,
        activity.activity_date >= snapshots.window_7d_start as in_7d,
        activity.activity_date >= snapshots.window_28d_start as in_28d,
        {%- for column in activity_columns %}
        activity.{{ column }}{{ "," if not loop.last }}
        {%- endfor %}

    from snapshots
    inner join activity
        on activity.activity_date < snapshots.snapshot_date
        and activity.activity_date >= snapshots.active_window_start

),

aggregated as (

    select
        user_id,
        feature_ts,
        snapshot_slot,
        sum(case when in_7d then views else 0 end) as views_7d,
        sum(case when in_7d then carts else 0 end) as carts_7d,
        sum(case when in_7d then purchases else 0 end) as purchases_7d,
        sum(case when in_28d then views else 0 end) as views_28d,
        sum(case when in_28d then carts else 0 end) as carts_28d,
        sum(case when in_28d then purchases else 0 end) as purchases_28d,
        sum(purchases) as purchases_90d,
        sum(views) as views_90d,
        sum(carts) as carts_90d,
        sum(orders) as orders_90d,
        sum(units) as units_90d,
        sum(spend) as spend_90d,
        max(last_purchase_ts) as last_purchase_ts,
        sum(case when in_28d then 1 else 0 end) as active_days_28d

    from windowed
    group by user_id, feature_ts, snapshot_slot

),

{% endif %}

{{ basketcast.user_category_windows(method) }},

category_shares as (

    -- One aggregate, no window: with x a category's item events and T = sum(x), the top
    -- share is max(x) / T and the entropy in bits is (ln T - sum(x ln x) / T) / ln 2.
    select
        user_id,
        feature_ts,
        count(*) as categories_28d,
        cast(max(item_events) as {{ basketcast.type_double() }}) / sum(item_events)
            as top_category_share_28d,
        (
            ln(sum(item_events))
            - sum(item_events * ln(item_events)) / sum(item_events)
        ) / ln(2.0) as category_entropy_28d,
        cast(max(purchases) as {{ basketcast.type_double() }}) / nullif(sum(purchases), 0)
            as top_purchase_category_share_28d

    from category_windowed
    group by user_id, feature_ts

),

joined as (

    select
        aggregated.*,
        category_shares.top_category_share_28d,
        category_shares.category_entropy_28d,
        category_shares.categories_28d,
        category_shares.top_purchase_category_share_28d

    from aggregated
    left join category_shares
        on aggregated.user_id = category_shares.user_id
        and aggregated.feature_ts = category_shares.feature_ts

),

final as (

    select
        cast(user_id as bigint) as user_id,
        feature_ts,
        feature_ts as created_ts,
        cast(views_7d as bigint) as views_7d,
        cast(carts_7d as bigint) as carts_7d,
        cast(purchases_7d as bigint) as purchases_7d,
        cast(views_28d as bigint) as views_28d,
        cast(carts_28d as bigint) as carts_28d,
        cast(purchases_28d as bigint) as purchases_28d,
        cast(purchases_90d as bigint) as purchases_90d,
        {{ basketcast.round_double('coalesce(spend_90d, 0)', 2) }} as spend_90d,
        cast(
            ({{ basketcast.epoch_seconds('feature_ts') }}
                - {{ basketcast.epoch_seconds('last_purchase_ts') }}) / 86400.0
            as {{ basketcast.type_double() }}
        ) as days_since_last_purchase,
        cast(active_days_28d as bigint) as active_days_28d,
        cast(purchases_28d as {{ basketcast.type_double() }}) / nullif(carts_28d, 0)
            as cart_to_purchase_28d,
        cast(views_90d as bigint) as views_90d,
        cast(carts_90d as bigint) as carts_90d,
        cast(carts_28d as {{ basketcast.type_double() }}) / nullif(views_28d, 0)
            as view_to_cart_28d,
        cast(orders_90d as bigint) as orders_90d,
        cast(units_90d as {{ basketcast.type_double() }}) / nullif(orders_90d, 0)
            as avg_basket_units_90d,
        -- From the spend rounded to the cent: equal whichever order the spend was summed in.
        {{ basketcast.round_double(
            basketcast.round_double('spend_90d', 2) ~ ' / nullif(orders_90d, 0)', 6
        ) }} as avg_order_value_90d,
        {{ basketcast.round_double('top_category_share_28d', 9) }} as top_category_share_28d,
        {{ basketcast.round_double('category_entropy_28d', 9) }} as category_entropy_28d,
        cast(coalesce(categories_28d, 0) as bigint) as categories_28d,
        {{ basketcast.round_double('top_purchase_category_share_28d', 9) }}
            as top_purchase_category_share_28d,
        snapshot_slot

    from joined

)

select * from final
