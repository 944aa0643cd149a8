{#-
    The standard normal quantile Phi^-1(p) for 0 < p < 1, by Acklam's rational approximation
    (relative error below 1.2e-9): a rational function of p - 0.5 in the centre and of
    sqrt(-2 ln(tail)) in the tails below 0.02425 and above 0.97575. Plain arithmetic with ln()
    and sqrt(), so it runs on every warehouse; for a literal p the database folds it to a
    constant.
-#}
{% macro normal_quantile(p) -%}
    {%- set a = [-39.69683028665376, 220.9460984245205, -275.9285104469687,
                 138.3577518672690, -30.66479806614716, 2.506628277459239] -%}
    {%- set b = [-54.47609879822406, 161.5858368580409, -155.6989798598866,
                 66.80131188771972, -13.28068155288572] -%}
    {%- set c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838,
                 -2.549671348678288, 4.374664141464968, 2.938163982698783] -%}
    {%- set d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996,
                 3.754408661907416] -%}
    {%- set central_q = '(' ~ p ~ ' - 0.5)' -%}
    {%- set central_r = '(' ~ central_q ~ ' * ' ~ central_q ~ ')' -%}
    {%- set low_q = 'sqrt(-2.0 * ln(' ~ p ~ '))' -%}
    {%- set high_q = 'sqrt(-2.0 * ln(1.0 - ' ~ p ~ '))' -%}
    (case
        when {{ p }} < 0.02425 then
            {{ basketcast.normal_quantile_tail(low_q, c, d) }}
        when {{ p }} > 0.97575 then
            -{{ basketcast.normal_quantile_tail(high_q, c, d) }}
        else
            {{ basketcast.horner(central_r, a) }} * {{ central_q }}
            / {{ basketcast.horner(central_r, b + [1.0]) }}
    end)
{%- endmacro %}

{% macro normal_quantile_tail(q, c, d) -%}
    ({{ basketcast.horner(q, c) }} / {{ basketcast.horner(q, d + [1.0]) }})
{%- endmacro %}

{#- The polynomial coefficients[0] x^(n-1) + ... + coefficients[n-1], in Horner form. -#}
{% macro horner(x, coefficients) -%}
    {%- set ns = namespace(expression=coefficients[0] | string) -%}
    {%- for coefficient in coefficients[1:] -%}
        {%- set ns.expression = '(' ~ ns.expression ~ ') * ' ~ x ~ ' + ' ~ coefficient -%}
    {%- endfor -%}
    ({{ ns.expression }})
{%- endmacro %}
