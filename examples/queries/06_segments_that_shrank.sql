-- Which segments shrank since the previous segmentation, and what should we do about them?
-- Sizes on the newest as-of date; the change is null until a second date is in the history.
select
    segment,
    previous_users,
    users,
    users_change,
    round(100 * users_change_pct, 1) as change_pct,
    recommended_action
from consumers.marketing_segment_sizes
where as_of_date = (select max(as_of_date) from consumers.marketing_segment_sizes)
order by users_change nulls last, segment_order
