{#-
    The snapshot days a feature snapshot model (models/intermediate/feature_snapshots)
    computes in this run: every day of int_feature_snapshot_dates on a full build; on an
    incremental one, the days from the model's newest feature_ts minus `events_lookback_days`
    on (or from `reload_from`), the snapshots whose windows can see the days the daily models
    reloaded. Each row carries its `snapshot_slot`, the key the model is replaced by.
-#}
{% macro snapshots_to_build() -%}
    {%- set start_date = basketcast.reload_start_date('feature_ts', clean_only=false) -%}
    select * from {{ ref('int_feature_snapshot_dates') }}
    {%- if start_date %}
    where snapshot_date >= cast('{{ start_date }}' as date)
    {%- endif %}
{%- endmacro %}
{#-
    Two CTEs, `grid_bounds` and `grid_days`: a gapless calendar (`grid_date`) over the windows
    of the snapshots to build (the `snapshots` CTE) and their days. The snapshot models join
    each entity's span onto it, so one row per entity-day carries the running window sums.
-#}
{% macro feature_grid_days() -%}
grid_bounds as (

    select
        min(active_window_start) as first_day,
        max(snapshot_date) as last_day

    from snapshots

),

grid_days as (

    select date_day as grid_date
    from (
        {{ basketcast.date_spine('grid_bounds', 'first_day', 'last_day') }}
    ) as days

)
{%- endmacro %}

{#-
    The named windows of a feature snapshot model, over one row per `key` and `grid_date`:
    `days_7`, `days_28` and `days_active` (the `feature_active_days` var) see the days before
    the row's day, never the day itself.
-#}
{% macro feature_windows(key) -%}
    {%- set active_days = var('feature_active_days') | int -%}
    window
        days_7 as (
            partition by {{ key }} order by grid_date rows between 7 preceding and 1 preceding
        ),
        days_28 as (
            partition by {{ key }} order by grid_date rows between 28 preceding and 1 preceding
        ),
        days_active as (
            partition by {{ key }}
            order by grid_date
            rows between {{ active_days }} preceding and 1 preceding
        )
{%- endmacro %}

{#-
    How a feature snapshot model sums its windows in this run:
    - 'running': window sums over a gapless calendar of entity-days (feature_grid_days,
      feature_windows), each day's sums computed once. Cheapest when every calendar day is a
      snapshot and all are built: a full build at a one-day cadence.
    - 'join': each snapshot joins the days its windows see, one row per day and snapshot that
      sees it. Cheapest when few snapshots are built (an incremental run builds the newest
      days: the calendar would need 90 days per entity for each) or they are far apart.
    'auto' (the var `feature_window_method`) takes 'running' for a full build at a one-day
    cadence and 'join' otherwise. Both give the same rows; the unit tests run each.
    int_user_feature_snapshots picks its way by this; int_item_feature_snapshots, with far
    fewer entities, always takes running sums.
-#}
{% macro feature_window_method() -%}
    {%- set method = var('feature_window_method') -%}
    {%- if method == 'auto' -%}
        {%- set daily = var('feature_snapshot_days') | int == 1 -%}
        {%- set method = 'running' if daily and not is_incremental() else 'join' -%}
    {%- endif -%}
    {%- if method not in ('running', 'join') -%}
        {{ exceptions.raise_compiler_error(
            "feature_window_method must be auto, running or join, got " ~ method
        ) }}
    {%- endif -%}
    {{ return(method) }}
{%- endmacro %}
