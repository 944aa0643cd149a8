{#-
    Search terms and category names compared as words: lower case, every run of characters
    that is not a letter or digit becomes one space, no leading or trailing space.
-#}
{% macro normalize_text(expression) -%}
    {{ return(adapter.dispatch('normalize_text', 'basketcast')(expression)) }}
{%- endmacro %}

{% macro default__normalize_text(expression) -%}
    nullif(trim(regexp_replace(lower({{ expression }}), '[^a-z0-9]+', ' ', 'g')), '')
{%- endmacro %}

{#- Trimmed text, null when empty. -#}
{% macro clean_text(expression) -%}
    nullif(trim({{ expression }}), '')
{%- endmacro %}

{#- True when the normalized `phrase` occurs as whole words in the normalized `text`. -#}
{% macro contains_words(text, phrase) -%}
    ({{ dbt.concat(["' '", text, "' '"]) }} like {{ dbt.concat(["'% '", phrase, "' %'"]) }})
{%- endmacro %}
