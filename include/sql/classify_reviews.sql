-- Classify every raw review row: its typed columns, and the first reason it is rejected.
-- Runs unchanged on Athena (Trino) and DuckDB; keep it in the dialects' common subset.
-- {raw_reviews} is a relation with the 15 source columns as strings plus
-- source_file, source_line (NULL where the engine cannot tell), column_count and
-- has_invalid_utf8 (Athena reads undecodable bytes as U+FFFD).
SELECT
    source_file,
    source_line,
    CASE
        WHEN column_count <> 15
            THEN 'row: expected 15 tab-separated columns, found ' || CAST(column_count AS VARCHAR)
        WHEN has_invalid_utf8 THEN 'row: invalid UTF-8'
        WHEN coalesce(trim(review_id), '') = '' THEN 'review_id: empty'
        WHEN coalesce(trim(star_rating), '') NOT IN ('1', '2', '3', '4', '5')
            THEN 'star_rating: not an integer 1..5'
        WHEN coalesce(trim(review_body), '') = '' THEN 'review_body: empty'
        WHEN try_cast(trim(review_date) AS DATE) IS NULL THEN 'review_date: not a YYYY-MM-DD date'
        WHEN CAST(try_cast(trim(helpful_votes) AS BIGINT) AS VARCHAR) IS DISTINCT FROM trim(helpful_votes)
            OR try_cast(trim(helpful_votes) AS BIGINT) < 0
            THEN 'helpful_votes: not a non-negative integer'
        WHEN CAST(try_cast(trim(total_votes) AS BIGINT) AS VARCHAR) IS DISTINCT FROM trim(total_votes)
            OR try_cast(trim(total_votes) AS BIGINT) < 0
            THEN 'total_votes: not a non-negative integer'
        WHEN try_cast(trim(helpful_votes) AS BIGINT) > try_cast(trim(total_votes) AS BIGINT)
            THEN 'helpful_votes: greater than total_votes'
        WHEN coalesce(trim(product_category), '') = '' THEN 'product_category: empty'
    END AS reject_reason,
    marketplace,
    customer_id,
    review_id,
    product_id,
    product_parent,
    product_title,
    trim(product_category) AS product_category,
    star_rating,
    helpful_votes,
    total_votes,
    vine,
    verified_purchase,
    review_headline,
    review_body,
    review_date
FROM {raw_reviews}
