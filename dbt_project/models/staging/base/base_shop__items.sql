{#- Every raw catalogue row, typed, with the reason it is rejected (null when clean). -#}
{%- set raw_columns = [
    'item_id', 'category_id', 'category_name', 'brand', 'title', 'base_price', 'launched_at',
] %}

with

source as (

    select * from {{ source('shop', 'items') }}

),

typed as (

    select
        {{ basketcast.safe_cast('item_id', 'bigint') }} as item_id,
        {{ basketcast.safe_cast('category_id', 'bigint') }} as category_id,
        {{ basketcast.clean_text('category_name') }} as category_name,
        {{ basketcast.clean_text('brand') }} as brand,
        {{ basketcast.clean_text('title') }} as title,
        {{ basketcast.safe_cast('base_price', basketcast.type_double()) }} as base_price,
        {{ basketcast.safe_cast('launched_at', basketcast.type_timestamptz()) }} as launched_at,
        {{ basketcast.payload_columns(raw_columns, relation=none) }}

    from source

),

checked as (

    select
        *,
        case
            when payload_item_id is null then 'missing item_id'
            when item_id is null then 'unparseable item_id'
            when payload_category_id is not null and category_id is null
                then 'unparseable category_id'
            when payload_base_price is not null and base_price is null
                then 'unparseable base_price'
            when base_price < 0 then 'negative base_price'
            when payload_launched_at is not null and launched_at is null
                then 'unparseable launched_at'
        end as row_problem

    from typed

),

ranked as (

    select
        *,
        row_number() over (
            partition by item_id
            order by
                case when row_problem is null then 0 else 1 end,
                launched_at, category_id, title, base_price
        ) as copy_number

    from checked

),

final as (

    select
        item_id,
        category_id,
        category_name,
        {{ basketcast.normalize_text('category_name') }} as category_term,
        brand,
        title,
        base_price,
        launched_at,
        {{ basketcast.utc_date('launched_at') }} as launch_date,
        {{ basketcast.quarantine_columns('duplicate item_id', ['item_id'], raw_columns) }}

    from ranked

)

select * from final
