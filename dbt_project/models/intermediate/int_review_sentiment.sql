{#-
    Sentiment of each clean review from its text, by the word list in macros/sentiment.sql:
    the mean weight of the list's words and phrases found in the review (a phrase found
    inside a longer found phrase does not count on its own). Null when none occurs.
-#}

with

reviews as (

    select
        review_id,
        item_id,
        review_date,
        rating,
        {{ basketcast.normalize_text('review_text') }} as review_words

    from {{ ref('stg_shop__reviews') }}

),

lexicon as (

    {{ basketcast.sentiment_lexicon() }}

),

matches as (

    select
        reviews.review_id,
        lexicon.term,
        lexicon.weight

    from reviews
    inner join lexicon
        on {{ basketcast.contains_words('reviews.review_words', 'lexicon.term') }}

),

counted as (

    -- A match inside a longer match of the same review ('recommend' in 'not recommend')
    -- gives way to it.
    select matches.*
    from matches
    where not exists (
        select 1
        from matches as longer
        where longer.review_id = matches.review_id
            and longer.term <> matches.term
            and {{ basketcast.contains_words('longer.term', 'matches.term') }}
    )

),

scores as (

    select
        review_id,
        count(*) as matched_terms,
        avg(weight) as sentiment

    from counted
    group by review_id

),

final as (

    select
        reviews.review_id,
        reviews.item_id,
        reviews.review_date,
        reviews.rating,
        cast(coalesce(scores.matched_terms, 0) as bigint) as matched_terms,
        {{ basketcast.round_double('scores.sentiment', 6) }} as sentiment

    from reviews
    left join scores
        on reviews.review_id = scores.review_id

)

select * from final
