with

catalogue_terms as (

    -- What the catalogue answers to: category names and brands, normalized like searches.
    select distinct category_term as catalogue_term
    from {{ ref('stg_shop__items') }}
    where category_term is not null

    union

    select distinct {{ basketcast.normalize_text('brand') }} as catalogue_term
    from {{ ref('stg_shop__items') }}
    where {{ basketcast.normalize_text('brand') }} is not null

),

daily_terms as (

    select * from {{ ref('int_daily_search_terms') }}

),

search_terms as (

    select distinct search_term from daily_terms

),

matched_terms as (

    select distinct search_terms.search_term
    from search_terms
    inner join catalogue_terms
        on {{ basketcast.contains_words('search_terms.search_term', 'catalogue_terms.catalogue_term') }}

),

final as (

    select
        daily_terms.search_term,
        cast(daily_terms.search_date as date) as search_date,
        cast(daily_terms.searches as bigint) as searches,
        cast(daily_terms.searching_users as bigint) as searching_users

    from daily_terms
    left join matched_terms
        on daily_terms.search_term = matched_terms.search_term
    where matched_terms.search_term is null

)

select * from final
