{#- Every raw promotion, typed, with the reason it is rejected (null when clean). -#}
{%- set raw_columns = ['item_id', 'start_date', 'end_date', 'discount_pct'] %}

with

source as (

    select * from {{ source('shop', 'promotions') }}

),

items as (

    select item_id from {{ ref('stg_shop__items') }}

),

typed as (

    select
        {{ basketcast.safe_cast('source.item_id', 'bigint') }} as item_id,
        {{ basketcast.safe_cast('source.start_date', 'date') }} as start_date,
        {{ basketcast.safe_cast('source.end_date', 'date') }} as end_date,
        {{ basketcast.safe_cast('source.discount_pct', basketcast.type_double()) }} as discount_pct,
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
            when start_date is null or end_date is null then 'missing dates'
            when end_date < start_date then 'ends before it starts'
            when discount_pct is null or discount_pct < 0 or discount_pct > 100
                then 'discount_pct outside 0-100'
        end as row_problem

    from typed
    left join items
        on typed.item_id = items.item_id

),

ranked as (

    select
        *,
        row_number() over (
            partition by item_id, start_date, end_date, discount_pct
            order by case when row_problem is null then 0 else 1 end
        ) as copy_number

    from checked

),

final as (

    select
        item_id,
        start_date,
        end_date,
        discount_pct,
        {{ basketcast.quarantine_columns('duplicate promotion', ['item_id', 'start_date', 'end_date'], raw_columns) }}

    from ranked

)

select * from final
