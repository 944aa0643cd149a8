-- How accurate is each demand model on the rolling-origin backtest, and which one is champion?
select
    r.model_name,
    r.model_kind,
    r.is_champion,
    round(avg(case when m.metric = 'wape' then m.value end), 3) as wape,
    round(avg(case when m.metric = 'pinball_mean' then m.value end), 3) as pinball_mean,
    round(avg(case when m.metric = 'coverage_p10_p90' then m.value end), 3) as coverage_p10_p90,
    count(distinct m.cutoff) as cutoffs
from ml.model_runs as r
join ml.backtest_metrics as m using (run_id)
where m.segment = 'all' and m.horizon is null
  and r.trained_at = (select max(trained_at) from ml.model_runs as x where x.model_name = r.model_name)
group by r.model_name, r.model_kind, r.is_champion
order by pinball_mean
