{#-
    Standard normal CDF by the logistic approximation Phi(x) ~ 1 / (1 + exp(-1.702 x)),
    within 0.01 of the exact value everywhere. Plain arithmetic, so it runs on every warehouse;
    the argument is clamped to [-30, 30] so exp() cannot overflow.
-#}
{% macro normal_cdf(expression) -%}
    (1.0 / (1.0 + exp(-1.702 * least(greatest({{ expression }}, -30.0), 30.0))))
{%- endmacro %}

{#- The median of a numeric expression, as an aggregate. -#}
{% macro median(expression) -%}
    {{ return(adapter.dispatch('median', 'basketcast')(expression)) }}
{%- endmacro %}

{% macro default__median(expression) -%}
    percentile_cont(0.5) within group (order by {{ expression }})
{%- endmacro %}

{% macro duckdb__median(expression) -%}
    median({{ expression }})
{%- endmacro %}
