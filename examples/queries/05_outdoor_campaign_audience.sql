-- Who should see the outdoor campaign? Likely buyers who favour outdoor and did not just buy it.
-- score = p_purchase x outdoor affinity x expected spend; export user_id in audience_rank order.
select
    audience_rank,
    user_id,
    round(score, 2) as expected_outdoor_spend,
    round(p_purchase, 3) as p_purchase,
    round(affinity, 3) as outdoor_affinity,
    audience_size
from consumers.ads_audiences
where category_name = 'outdoor'
order by audience_rank
