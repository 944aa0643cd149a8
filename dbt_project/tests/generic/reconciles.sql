{#-
    Fails for every table of the newest load whose rows do not add up:
    rows_in <> rows_clean + rows_rejected. Nothing read may be lost or double counted.
-#}
{% test reconciles(model) %}

select *
from {{ model }}
where loaded_at = (select max(loaded_at) from {{ model }})
    and rows_in <> rows_clean + rows_rejected

{% endtest %}
