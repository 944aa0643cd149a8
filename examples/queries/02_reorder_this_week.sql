-- What should I reorder this week? Items whose stock will not cover lead-time demand.
select
    item_id,
    on_hand,
    on_order,
    lead_time_days,
    round(reorder_point, 1) as reorder_point,
    recommended_order_qty,
    round(stockout_risk, 3) as stockout_risk
from consumers.inventory_replenishment_plan
where recommended_order_qty > 0
order by stockout_risk desc, recommended_order_qty desc
