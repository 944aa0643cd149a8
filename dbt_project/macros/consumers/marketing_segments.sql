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
