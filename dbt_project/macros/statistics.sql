{#-
    Standard normal CDF by the logistic approximation Phi(x) ~ 1 / (1 + exp(-1.702 x)),
    within 0.01 of the exact value everywhere. Plain arithmetic, so it runs on every warehouse;
    the argument is clamped to [-30, 30] so exp() cannot overflow.
-#}
{% macro normal_cdf(expression) -%}
    (1.0 / (1.0 + exp(-1.702 * least(greatest({{ expression }}, -30.0), 30.0))))
{%- endmacro %}
