-- Who is most likely to buy in the next 7 days, and what should we show them?
select
    p.user_id,
    round(p.p_purchase, 3) as p_purchase,
    round(p.expected_spend, 2) as expected_spend,
    p.decile,
    list(r.item_id order by r.rank)[1:3] as top_3_items
from predictions.user_purchase_propensity_latest as p
left join predictions.user_item_recommendations_latest as r using (user_id)
group by p.user_id, p.p_purchase, p.expected_spend, p.decile
order by p.p_purchase desc
