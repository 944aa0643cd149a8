with

source as (

    select * from {{ source('shop', 'items') }}

),

renamed as (

    select
        cast(item_id as bigint) as item_id,
        cast(category_id as bigint) as category_id,
        {{ basketcast.clean_text('category_name') }} as category_name,
        {{ basketcast.clean_text('brand') }} as brand,
        {{ basketcast.clean_text('title') }} as title,
        cast(base_price as {{ basketcast.type_double() }}) as base_price,
        cast(launched_at as {{ basketcast.type_timestamptz() }}) as launched_at

    from source

),

validated as (

    select
        *,
        case
            when item_id is null then 'missing item_id'
            when base_price < 0 then 'negative base_price'
        end as rejection_reason

    from renamed

),

ranked as (

    select
        *,
        row_number() over (
            partition by item_id
            order by launched_at, category_id, title
        ) as row_in_key

    from validated
    where rejection_reason is null

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
        {{ basketcast.utc_date('launched_at') }} as launch_date

    from ranked
    where row_in_key = 1

)

select * from final
