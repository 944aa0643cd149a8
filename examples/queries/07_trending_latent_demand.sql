-- What latent demand is trending? Searches the catalogue cannot answer, last 28 days vs the 28 before.
select
    demand_rank,
    search_term,
    recent_searches,
    previous_searches,
    round(trend_z, 2) as trend_z,
    trend
from consumers.unmet_demand
order by trend = 'up' desc, trend_z desc, demand_rank
