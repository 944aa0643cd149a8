{#-
    Review sentiment by a transparent word list: each entry is a normalized word or phrase
    with a weight in [-1, 1] (positive praise, negative complaint, 0 for neutral wording).
    A review's score is the mean weight of the entries found in its normalized text as whole
    words, where an entry found inside a longer found entry does not count on its own
    ('not recommend' overrides 'recommend'). Null when no entry occurs. Extend the list
    here; every warehouse runs the same plain SQL.
-#}
{% macro sentiment_lexicon() -%}
    {%- set entries = [
        ('love', 1.0), ('excellent', 1.0), ('great', 1.0), ('perfect', 1.0), ('amazing', 1.0),
        ('fantastic', 1.0), ('recommend', 1.0), ('happy', 0.75), ('good', 0.5),
        ('works great', 1.0), ('exactly as described', 0.75), ('value', 0.25),
        ('decent', 0.25), ('fine', 0.25), ('does the job', 0.25), ('works', 0.25),
        ('okay', 0.0), ('ok', 0.0), ('average', 0.0), ('what i expected', 0.0),
        ('nothing special', -0.25), ('slow', -0.25),
        ('cheap', -0.5), ('return', -0.5), ('return it', -0.75),
        ('disappointed', -1.0), ('disappointing', -1.0), ('terrible', -1.0), ('awful', -1.0),
        ('poor', -1.0), ('broke', -1.0), ('broken', -1.0), ('waste', -1.0), ('worst', -1.0),
        ('not buy', -1.0), ('not recommend', -1.0), ('not happy', -1.0), ('not good', -1.0),
        ('not worth', -1.0), ('not great', -0.5),
    ] -%}
    select term, cast(weight as {{ basketcast.type_double() }}) as weight
    from (
        values
        {%- for term, weight in entries %}
        ('{{ term }}', {{ weight }}){{ "," if not loop.last }}
        {%- endfor %}
    ) as lexicon (term, weight)
{%- endmacro %}
