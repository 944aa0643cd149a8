with

searches as (

    select * from {{ ref('int_daily_search_terms') }}

),

categories as (

    select
        category_id,
        min(category_term) as category_term

    from {{ ref('stg_shop__items') }}
    where category_id is not null
        and category_term is not null
    group by category_id

),

final as (

    select
        categories.category_id,
        searches.search_date,
        cast(sum(searches.searches) as bigint) as category_searches

    from searches
    inner join categories
        on {{ basketcast.contains_words('searches.search_term', 'categories.category_term') }}
    group by categories.category_id, searches.search_date

)

select * from final
