{#-
    The marketing segments in the order their rules are tried (the first that matches wins;
    the rules are in models/consumers/marketing_segments.sql and its YAML), with the action
    recommended for each. marketing_segment_sizes reports every one, empty ones included.
-#}
{% macro marketing_segment_catalogue() -%}
    {{ return([
        ("prospects", "Convert: first-order offer on the categories they browse"),
        ("new", "Onboard: welcome series and a nudge towards the second order"),
        ("champions", "Reward: early access and referral asks; no discount needed"),
        ("at_risk", "Win back now: personal reminder with a time-limited offer"),
        ("loyal", "Upsell: recommendations, bundles and the loyalty programme"),
        ("promising", "Show their top recommendations this week: likely to buy soon"),
        ("hibernating", "Low-cost win-back by e-mail only; leave out of paid media"),
        ("needs_attention", "Re-engage with offers in their top categories"),
    ]) }}
{%- endmacro %}

{#- The catalogue as a relation: segment, segment_order, recommended_action. -#}
{% macro marketing_segment_catalogue_relation() -%}
    {%- for segment, action in basketcast.marketing_segment_catalogue() %}
    select
        cast('{{ segment }}' as {{ dbt.type_string() }}) as segment,
        {{ loop.index }} as segment_order,
        cast('{{ action }}' as {{ dbt.type_string() }}) as recommended_action
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}

{#-
    Per as-of date and user of `scored` (as_of_date, user_id): in_campaign (a campaign of
    `campaigns` runs on the as-of date) and campaigns_last_90_days (campaigns that started in
    the 90 days up to it). Users without campaigns get no row.
-#}
{% macro marketing_segment_campaign_reach(scored, campaigns) -%}
    select
        {{ scored }}.as_of_date,
        {{ scored }}.user_id,
        max(case
            when campaigns.start_date <= {{ scored }}.as_of_date
                and campaigns.end_date >= {{ scored }}.as_of_date then 1 else 0
        end) = 1 as in_campaign,
        sum(case
            when campaigns.start_date > {{ dbt.dateadd('day', -90, scored ~ '.as_of_date') }}
                and campaigns.start_date <= {{ scored }}.as_of_date then 1 else 0
        end) as campaigns_last_90_days

    from {{ scored }}
    inner join {{ campaigns }} as campaigns
        on {{ scored }}.user_id = campaigns.user_id
    group by {{ scored }}.as_of_date, {{ scored }}.user_id
{%- endmacro %}
