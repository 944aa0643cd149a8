{#-
    The CTE `category_windowed` of int_user_feature_snapshots: per snapshot (the `snapshots`
    CTE), user and category, the user's item events and purchases in that category on the 28
    days before the snapshot (recent interest). Two ways to the same rows, picked by
    feature_window_method(); the model's category shares aggregate them per user.
-#}
{% macro user_category_windows(method) -%}
    {%- if method == 'running' -%}
        {{ basketcast.user_category_windows_running() }}
    {%- else -%}
        {{ basketcast.user_category_windows_join() }}
    {%- endif -%}
{%- endmacro %}

{#- 'join': each activity day is copied into the snapshots whose window sees it. -#}
{% macro user_category_windows_join() -%}
category_windowed as (

    select
        snapshots.feature_ts,
        category_activity.user_id,
        category_activity.category_id,
        sum(category_activity.item_events) as item_events,
        sum(category_activity.purchases) as purchases

    from snapshots
    inner join category_activity
        on category_activity.activity_date < snapshots.snapshot_date
        and category_activity.activity_date >= snapshots.window_28d_start
    group by snapshots.feature_ts, category_activity.user_id, category_activity.category_id

)
{%- endmacro %}

{#-
    'running' (needs the `grid_bounds` and `grid_days` CTEs of feature_grid_days()): a user's
    28-day sum in a category changes only on the day after an activity day (the day enters
    the window) and 28 days later (it leaves). A running sum over those change days gives the
    sum on every day up to the next change, a span of at most 28 days, and the span is copied
    to the snapshots inside it, found by rank: a snapshot row is made only where the sum is
    not zero, instead of copying every activity day into the 28 snapshots that see it (five
    times the rows at a one-day cadence, before aggregating them).
-#}
{% macro user_category_windows_running() -%}
{%- set window_days = 28 -%}
category_changes as (

    select
        category_activity.user_id,
        category_activity.category_id,
        cast({{ dbt.dateadd('day', 1, 'category_activity.activity_date') }} as date)
            as change_date,
        category_activity.item_events,
        category_activity.purchases

    from category_activity
    inner join grid_bounds
        on category_activity.activity_date >= grid_bounds.first_day

    union all

    select
        category_activity.user_id,
        category_activity.category_id,
        cast({{ dbt.dateadd('day', window_days + 1, 'category_activity.activity_date') }} as date)
            as change_date,
        -category_activity.item_events as item_events,
        -category_activity.purchases as purchases

    from category_activity
    inner join grid_bounds
        on category_activity.activity_date >= grid_bounds.first_day

),

category_deltas as (

    select
        user_id,
        category_id,
        change_date,
        sum(item_events) as item_events,
        sum(purchases) as purchases

    from category_changes
    group by user_id, category_id, change_date

),

category_spans as (

    -- From each change day to the next: the window sums that hold in between.
    select
        user_id,
        category_id,
        change_date,
        lead(change_date) over pair_days as next_change_date,
        sum(item_events) over pair_running as item_events,
        sum(purchases) over pair_running as purchases

    from category_deltas
    window
        pair_days as (partition by user_id, category_id order by change_date),
        pair_running as (
            partition by user_id, category_id
            order by change_date
            rows between unbounded preceding and current row
        )

),

snapshot_ranks as (

    select
        snapshot_date,
        feature_ts,
        row_number() over (order by snapshot_date) as snapshot_rank

    from snapshots

),

day_ranks as (

    -- Each calendar day's first snapshot on or after it, by rank; days past the calendar
    -- rank one past the last snapshot (`past_last`).
    select
        grid_days.grid_date,
        1 + count(snapshot_ranks.snapshot_rank) over (
            order by grid_days.grid_date rows between unbounded preceding and 1 preceding
        ) as first_rank

    from grid_days
    left join snapshot_ranks
        on snapshot_ranks.snapshot_date = grid_days.grid_date

),

past_last as (

    select count(*) + 1 as first_rank from snapshots

),

span_snapshots as (

    -- The snapshots a span holds: ranks first_rank .. first_rank + snapshot_count - 1.
    select
        category_spans.user_id,
        category_spans.category_id,
        category_spans.item_events,
        category_spans.purchases,
        starts.first_rank,
        coalesce(ends.first_rank, past_last.first_rank) - starts.first_rank as snapshot_count

    from category_spans
    cross join past_last
    inner join day_ranks as starts
        on starts.grid_date = category_spans.change_date
    left join day_ranks as ends
        on ends.grid_date = category_spans.next_change_date
    where category_spans.item_events > 0

),

rank_offsets as (

    {% for offset in range(window_days) -%}
    select {{ offset }} as rank_offset{{ ' union all' if not loop.last }}
    {% endfor %}

),

category_windowed as (

    select
        snapshot_ranks.feature_ts,
        span_ranks.user_id,
        span_ranks.category_id,
        span_ranks.item_events,
        span_ranks.purchases

    from (
        select
            span_snapshots.*,
            span_snapshots.first_rank + rank_offsets.rank_offset as snapshot_rank

        from span_snapshots
        inner join rank_offsets
            on rank_offsets.rank_offset < span_snapshots.snapshot_count
    ) as span_ranks
    inner join snapshot_ranks
        on snapshot_ranks.snapshot_rank = span_ranks.snapshot_rank

)
{%- endmacro %}
