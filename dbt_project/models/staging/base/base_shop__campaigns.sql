{#-
    Every raw campaign row, typed, with the reason it is rejected (null when clean). The raw
    table is optional: without `raw/campaigns/` this model is empty.
-#}
{%- set raw_columns = ['campaign_id', 'user_id', 'campaign_type', 'start_date', 'end_date'] %}

with

source as (

    select * from {{ basketcast.optional_source('shop', 'campaigns', basketcast.campaign_columns()) }}

),

typed as (

    select
        {{ basketcast.safe_cast('source.campaign_id', 'bigint') }} as campaign_id,
        {{ basketcast.safe_cast('source.user_id', 'bigint') }} as user_id,
        nullif(trim(cast(source.campaign_type as {{ dbt.type_string() }})), '') as campaign_type,
        {{ basketcast.safe_cast('source.start_date', 'date') }} as start_date,
        {{ basketcast.safe_cast('source.end_date', 'date') }} as end_date,
        {{ basketcast.payload_columns(raw_columns) }}

    from source

),

checked as (

    select
        *,
        case
            when payload_campaign_id is null then 'missing campaign_id'
            when campaign_id is null then 'unparseable campaign_id'
            when payload_user_id is null then 'missing user_id'
            when user_id is null then 'unparseable user_id'
            when start_date is null or end_date is null then 'missing dates'
            when end_date < start_date then 'ends before it starts'
        end as row_problem

    from typed

),

{{ basketcast.rank_copies('checked', ['campaign_id', 'user_id'], ['start_date', 'end_date']) }},

final as (

    select
        campaign_id,
        user_id,
        coalesce(campaign_type, 'unknown') as campaign_type,
        start_date,
        end_date,
        {{ basketcast.quarantine_columns('duplicate campaign user', ['campaign_id', 'user_id'], raw_columns) }}

    from ranked

)

select * from final
