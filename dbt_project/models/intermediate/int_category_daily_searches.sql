with

searches as (

    select
        event_date as search_date,
        search_term,
        count(*) as searches

    from {{ ref('stg_shop__events') }}
    where event_type = 'search'
        and search_term is not null
    group by event_date, search_term

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
