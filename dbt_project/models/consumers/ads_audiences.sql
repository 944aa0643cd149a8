{%- set max_size = var('ads_audience_max_size') -%}
{%- set exclude_days = var('ads_exclude_recent_buyers_days') -%}
{%- if max_size is not number or max_size < 1 -%}
    {{ exceptions.raise_compiler_error(
        "var ads_audience_max_size must be a positive whole number of users; got " ~ max_size
    ) }}
{%- endif -%}
{%- if exclude_days is not number or exclude_days < 0 -%}
    {{ exceptions.raise_compiler_error(
        "var ads_exclude_recent_buyers_days must be a number of days >= 0; got " ~ exclude_days
    ) }}
{%- endif -%}

with

propensity as (

    select * from {{ source('predictions', 'user_purchase_propensity_latest') }}

),

affinity as (

    select * from {{ source('predictions', 'user_category_affinity_latest') }}

),

purchases as (

    select * from {{ ref('int_user_category_purchases') }}

),

items as (

    select * from {{ ref('dim_items') }}

),

categories as (

    select
        category_id,
        min(category_name) as category_name

    from items
    where category_id is not null
    group by category_id

),

candidates as (

    -- Expected spend in the category over the propensity window: P(buy) x the category's
    -- share of the user's interest x expected spend.
    select
        affinity.category_id,
        propensity.user_id,
        propensity.as_of_date,
        propensity.run_id as propensity_run_id,
        affinity.run_id as affinity_run_id,
        propensity.p_purchase,
        affinity.score as affinity,
        propensity.expected_spend,
        propensity.p_purchase * affinity.score * propensity.expected_spend as score

    from propensity
    inner join affinity
        on propensity.user_id = affinity.user_id

),

recent_buyers as (

    -- Users who bought the category in the exclusion window before the as-of date (or since).
    select distinct
        candidates.user_id,
        candidates.category_id

    from candidates
    inner join purchases
        on candidates.user_id = purchases.user_id
        and candidates.category_id = purchases.category_id
    where purchases.last_purchase_date
        > {{ dbt.dateadd('day', -exclude_days, 'candidates.as_of_date') }}

),

eligible as (

    select candidates.*
    from candidates
    left join recent_buyers
        on candidates.user_id = recent_buyers.user_id
        and candidates.category_id = recent_buyers.category_id
    where recent_buyers.user_id is null
        and candidates.score > 0

),

ranked as (

    select
        *,
        row_number() over (
            partition by category_id
            order by score desc, user_id
        ) as audience_rank

    from eligible

),

capped as (

    select
        *,
        count(*) over (partition by category_id) as audience_size

    from ranked
    where audience_rank <= {{ max_size }}

),

final as (

    select
        cast(capped.category_id as bigint) as category_id,
        cast(categories.category_name as {{ dbt.type_string() }}) as category_name,
        cast(capped.user_id as bigint) as user_id,
        cast(capped.audience_rank as bigint) as audience_rank,
        cast(capped.audience_size as bigint) as audience_size,
        cast(capped.score as {{ basketcast.type_double() }}) as score,
        cast(capped.p_purchase as {{ basketcast.type_double() }}) as p_purchase,
        cast(capped.affinity as {{ basketcast.type_double() }}) as affinity,
        cast(capped.expected_spend as {{ basketcast.type_double() }}) as expected_spend,
        cast(capped.as_of_date as date) as as_of_date,
        cast(capped.propensity_run_id as {{ dbt.type_string() }}) as propensity_run_id,
        cast(capped.affinity_run_id as {{ dbt.type_string() }}) as affinity_run_id

    from capped
    left join categories
        on capped.category_id = categories.category_id

)

select * from final
