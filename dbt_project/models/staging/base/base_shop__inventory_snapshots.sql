{#- Every raw inventory snapshot, typed, with the reason it is rejected (null when clean). -#}
{%- set raw_columns = [
    'item_id', 'snapshot_date', 'on_hand', 'on_order', 'lead_time_days', 'unit_cost',
] %}

with

source as (

    select * from {{ source('shop', 'inventory_snapshots') }}

),

items as (

    select item_id from {{ ref('stg_shop__items') }}

),

typed as (

    select
        {{ basketcast.safe_cast('source.item_id', 'bigint') }} as item_id,
        {{ basketcast.safe_cast('source.snapshot_date', 'date') }} as snapshot_date,
        {{ basketcast.safe_cast('source.on_hand', 'integer') }} as on_hand,
        {{ basketcast.safe_cast('source.on_order', 'integer') }} as on_order,
        {{ basketcast.safe_cast('source.lead_time_days', 'integer') }} as lead_time_days,
        {{ basketcast.safe_cast('source.unit_cost', basketcast.type_double()) }} as unit_cost,
        {{ basketcast.payload_columns(raw_columns) }}

    from source

),

checked as (

    select
        typed.*,
        case
            when payload_item_id is null then 'missing item_id'
            when typed.item_id is null then 'unparseable item_id'
            when items.item_id is null then 'unknown item_id'
            when payload_snapshot_date is null then 'missing snapshot_date'
            when snapshot_date is null then 'unparseable snapshot_date'
            when payload_on_hand is not null and on_hand is null then 'unparseable on_hand'
            when on_hand < 0 then 'negative on_hand'
            when on_order < 0 then 'negative on_order'
            when lead_time_days < 0 then 'negative lead_time_days'
            when unit_cost < 0 then 'negative unit_cost'
        end as row_problem

    from typed
    left join items
        on typed.item_id = items.item_id

),

ranked as (

    select
        *,
        row_number() over (
            partition by item_id, snapshot_date
            order by
                case when row_problem is null then 0 else 1 end,
                on_hand, on_order, lead_time_days, unit_cost
        ) as copy_number

    from checked

),

final as (

    select
        item_id,
        snapshot_date,
        on_hand,
        on_order,
        lead_time_days,
        unit_cost,
        {{ basketcast.quarantine_columns('duplicate snapshot', ['item_id', 'snapshot_date'], raw_columns) }}

    from ranked

)

select * from final
