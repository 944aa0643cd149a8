-- Which items will sell most over the next 7 days, with an 80% range?
-- Reads the champion model's newest forecast.
select
    f.item_id,
    i.category_name,
    round(sum(f.p50), 1) as units_p50,
    round(sum(f.p10), 1) as units_p10,
    round(sum(f.p90), 1) as units_p90,
    f.model_name
from predictions.item_demand_forecast_latest as f
join marts.dim_items as i using (item_id)
where f.horizon <= 7
group by f.item_id, i.category_name, f.model_name
order by units_p50 desc
