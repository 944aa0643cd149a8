with

source as (

    select * from {{ source('shop', 'inventory_snapshots') }}

),

renamed as (

    select
        cast(item_id as bigint) as item_id,
        cast(snapshot_date as date) as snapshot_date,
        cast(on_hand as integer) as on_hand,
        cast(on_order as integer) as on_order,
        cast(lead_time_days as integer) as lead_time_days,
        cast(unit_cost as {{ basketcast.type_double() }}) as unit_cost

    from source

),

validated as (

    select
        *,
        case
            when item_id is null then 'missing item_id'
            when snapshot_date is null then 'missing snapshot_date'
            when on_hand < 0 then 'negative on_hand'
            when on_order < 0 then 'negative on_order'
            when lead_time_days < 0 then 'negative lead_time_days'
        end as rejection_reason

    from renamed

),

ranked as (

    select
        *,
        row_number() over (
            partition by item_id, snapshot_date
            order by on_hand, on_order, lead_time_days
        ) as row_in_key

    from validated
    where rejection_reason is null

),

final as (

    select
        item_id,
        snapshot_date,
        on_hand,
        on_order,
        lead_time_days,
        unit_cost

    from ranked
    where row_in_key = 1

)

select * from final
