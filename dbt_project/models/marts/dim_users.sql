with

activity as (

    select * from {{ ref('fct_user_daily_activity') }}

),

reviews as (

    select * from {{ ref('stg_shop__reviews') }}
    where user_id is not null

),

user_activity as (

    select
        user_id,
        min(activity_date) as first_active_date,
        max(activity_date) as last_active_date,
        min(case when orders > 0 then activity_date end) as first_order_date,
        max(case when orders > 0 then activity_date end) as last_order_date,
        count(*) as active_days,
        sum(orders) as lifetime_orders,
        sum(spend) as lifetime_spend

    from activity
    group by user_id

),

review_users as (

    select
        user_id,
        count(*) as review_count

    from reviews
    group by user_id

),

user_ids as (

    select user_id from user_activity
    union
    select user_id from review_users

),

final as (

    select
        user_ids.user_id,
        user_activity.first_active_date,
        user_activity.last_active_date,
        user_activity.first_order_date,
        user_activity.last_order_date,
        cast(coalesce(user_activity.active_days, 0) as bigint) as active_days,
        cast(coalesce(user_activity.lifetime_orders, 0) as bigint) as lifetime_orders,
        {{ basketcast.round_double('coalesce(user_activity.lifetime_spend, 0)', 2) }}
            as lifetime_spend,
        cast(coalesce(review_users.review_count, 0) as bigint) as review_count

    from user_ids
    left join user_activity
        on user_ids.user_id = user_activity.user_id
    left join review_users
        on user_ids.user_id = review_users.user_id

)

select * from final
