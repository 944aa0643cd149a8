{%- set service_level = var('service_level') -%}
{%- if service_level is not number or not (0.5 <= service_level < 1) -%}
    {{ exceptions.raise_compiler_error(
        "var service_level must be a cycle service level in [0.5, 1), e.g. 0.95; got "
        ~ service_level
    ) }}
{%- endif -%}

with

forecast as (

    select * from {{ source('predictions', 'item_demand_forecast_latest') }}

),

snapshots as (

    select * from {{ ref('stg_shop__inventory_snapshots') }}

),

items as (

    select * from {{ ref('dim_items') }}

),

daily_forecast as (

    -- A day's mean from its quantiles by Swanson's 30-40-30 rule; its spread from the
    -- 10 %-90 % range, which spans 2 x 1.2816 = 2.563 sigma of a normal distribution.
    select
        run_id,
        model_name,
        model_version,
        as_of_date,
        item_id,
        horizon,
        0.3 * p10 + 0.4 * p50 + 0.3 * p90 as daily_mean,
        power((p90 - p10) / 2.563, 2) as variance

    from forecast

),

forecast_items as (

    select
        run_id,
        model_name,
        model_version,
        as_of_date,
        item_id,
        max(horizon) as forecast_days,
        avg(daily_mean) as avg_daily_demand,
        avg(variance) as avg_daily_variance

    from daily_forecast
    group by run_id, model_name, model_version, as_of_date, item_id

),

ranked_snapshots as (

    -- The newest stock position on or before the first forecast day.
    select
        snapshots.*,
        row_number() over (
            partition by snapshots.item_id
            order by snapshots.snapshot_date desc
        ) as recency

    from snapshots
    inner join forecast_items
        on snapshots.item_id = forecast_items.item_id
        and snapshots.snapshot_date <= {{ dbt.dateadd('day', 1, 'forecast_items.as_of_date') }}

),

positions as (

    select
        forecast_items.*,
        ranked_snapshots.snapshot_date,
        ranked_snapshots.on_hand,
        coalesce(ranked_snapshots.on_order, 0) as on_order,
        coalesce(
            ranked_snapshots.lead_time_days, {{ var('default_lead_time_days') }}
        ) as lead_time_days

    from forecast_items
    left join ranked_snapshots
        on forecast_items.item_id = ranked_snapshots.item_id
        and ranked_snapshots.recency = 1

),

lead_time_totals as (

    select
        positions.item_id,
        sum(daily_forecast.daily_mean) as covered_demand,
        sum(daily_forecast.variance) as covered_variance,
        count(daily_forecast.horizon) as covered_days

    from positions
    left join daily_forecast
        on positions.item_id = daily_forecast.item_id
        and daily_forecast.horizon >= 1
        and daily_forecast.horizon <= positions.lead_time_days
    group by positions.item_id

),

lead_time as (

    -- Days of a lead time past the forecast horizon repeat the forecast's average day.
    select
        positions.*,
        coalesce(lead_time_totals.covered_demand, 0)
            + (positions.lead_time_days - lead_time_totals.covered_days)
            * positions.avg_daily_demand as lead_time_demand,
        sqrt(
            coalesce(lead_time_totals.covered_variance, 0)
            + (positions.lead_time_days - lead_time_totals.covered_days)
            * positions.avg_daily_variance
        ) as lead_time_sigma

    from positions
    inner join lead_time_totals
        on positions.item_id = lead_time_totals.item_id

),

settings as (

    -- The safety factor z is the standard normal quantile of the cycle service level.
    {%- set level = 'cast(' ~ service_level ~ ' as ' ~ basketcast.type_double() ~ ')' %}
    select
        {{ level }} as service_level,
        {{ basketcast.normal_quantile(level) }} as service_level_z

),

plan as (

    select
        lead_time.*,
        settings.service_level,
        settings.service_level_z,
        settings.service_level_z * lead_time.lead_time_sigma as safety_stock,
        lead_time.lead_time_demand
            + settings.service_level_z * lead_time.lead_time_sigma as reorder_point,
        lead_time.on_hand + lead_time.on_order as inventory_position

    from lead_time
    cross join settings

),

{%- set stockout_risk -%}
    case
        when plan.inventory_position is null then null
        when plan.lead_time_sigma > 0 then {{ basketcast.normal_cdf(
            '(plan.lead_time_demand - plan.inventory_position) / plan.lead_time_sigma'
        ) }}
        when plan.lead_time_demand > plan.inventory_position then 1.0
        else 0.0
    end
{%- endset %}

final as (

    select
        cast(plan.item_id as bigint) as item_id,
        cast(items.category_id as bigint) as category_id,
        cast(plan.run_id as {{ dbt.type_string() }}) as run_id,
        cast(plan.model_name as {{ dbt.type_string() }}) as model_name,
        cast(plan.model_version as {{ dbt.type_string() }}) as model_version,
        cast(plan.as_of_date as date) as as_of_date,
        cast(plan.snapshot_date as date) as inventory_snapshot_date,
        cast(plan.on_hand as integer) as on_hand,
        cast(plan.on_order as integer) as on_order,
        cast(plan.lead_time_days as integer) as lead_time_days,
        {{ basketcast.round_double('plan.avg_daily_demand', 9) }} as avg_daily_demand,
        {{ basketcast.round_double('plan.lead_time_demand', 9) }} as lead_time_demand,
        {{ basketcast.round_double('plan.lead_time_sigma', 9) }} as lead_time_sigma,
        cast(plan.service_level as {{ basketcast.type_double() }}) as service_level,
        cast(plan.service_level_z as {{ basketcast.type_double() }}) as service_level_z,
        {{ basketcast.round_double('plan.safety_stock', 9) }} as safety_stock,
        {{ basketcast.round_double('plan.reorder_point', 9) }} as reorder_point,
        cast(
            case
                when plan.inventory_position is null then null
                when plan.reorder_point - plan.inventory_position > 0
                    then ceil(plan.reorder_point - plan.inventory_position)
                else 0
            end as bigint
        ) as recommended_order_qty,
        {{ basketcast.round_double('plan.on_hand / nullif(plan.avg_daily_demand, 0)', 9) }}
            as days_of_cover,
        {{ basketcast.round_double(stockout_risk, 9) }} as stockout_risk

    from plan
    left join items
        on plan.item_id = items.item_id

)

select * from final
