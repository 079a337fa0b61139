-- Check every field of every raw review row: its parsed fields, and the first field rule it breaks.
-- Runs unchanged on Athena (Trino) and DuckDB; keep it in the dialects' common subset.
-- {raw_reviews} is a relation with the 15 source columns as strings plus
-- source_file, source_line (NULL where the engine cannot tell), column_count and
-- has_invalid_utf8 (Athena reads undecodable bytes as U+FFFD).
-- {earliest_review_date} and {latest_review_date} (the run's date) bound review_date, as ISO dates;
-- {row_hash} is the engine's 64-bit hash of the row's 15 raw fields.
-- Each field is parsed once (parsed_*, NULL where it does not parse, e.g. votes past the
-- INTEGER range, or a date not written YYYY-MM-DD: DuckDB would read 2015/03/04, Trino not) and
-- the field rules test the parsed values (field_reject_reason); a body is empty when it is
-- NULL or only spaces (the LIKE spares the trim of every long body not starting with a space).
SELECT
    source_file,
    source_line,
    CASE
        WHEN column_count <> 15
            THEN 'row: expected 15 tab-separated columns, found ' || CAST(column_count AS VARCHAR)
        WHEN has_invalid_utf8 THEN 'row: invalid UTF-8'
        WHEN review_id = 'review_id' AND star_rating = 'star_rating' THEN 'row: a repeated header line'
        WHEN parsed_review_id = '' THEN 'review_id: empty'
        WHEN parsed_star_rating IS NULL THEN 'star_rating: not an integer 1..5'
        WHEN review_body IS NULL OR review_body = '' OR (review_body LIKE ' %' AND trim(review_body) = '')
            THEN 'review_body: empty'
        WHEN parsed_review_date IS NULL THEN 'review_date: not a YYYY-MM-DD date'
        WHEN parsed_review_date < DATE '{earliest_review_date}' THEN 'review_date: before {earliest_review_date}'
        WHEN parsed_review_date > DATE '{latest_review_date}' THEN 'review_date: after the run date {latest_review_date}'
        WHEN parsed_helpful_votes IS NULL OR parsed_helpful_votes < 0
            OR CAST(parsed_helpful_votes AS VARCHAR) <> trim(helpful_votes)
            THEN 'helpful_votes: not a non-negative integer'
        WHEN parsed_total_votes IS NULL OR parsed_total_votes < 0
            OR CAST(parsed_total_votes AS VARCHAR) <> trim(total_votes)
            THEN 'total_votes: not a non-negative integer'
        WHEN parsed_helpful_votes > parsed_total_votes THEN 'helpful_votes: greater than total_votes'
        WHEN product_category = '' THEN 'product_category: empty'
    END AS field_reject_reason,
    {row_hash} AS row_hash,
    marketplace,
    customer_id,
    review_id,
    product_id,
    product_parent,
    product_title,
    product_category,
    star_rating,
    helpful_votes,
    total_votes,
    vine,
    verified_purchase,
    review_headline,
    review_body,
    review_date,
    parsed_review_id,
    parsed_star_rating,
    parsed_helpful_votes,
    parsed_total_votes,
    parsed_review_date
FROM (
    SELECT
        source_file,
        source_line,
        column_count,
        has_invalid_utf8,
        marketplace,
        customer_id,
        review_id,
        product_id,
        product_parent,
        product_title,
        coalesce(trim(product_category), '') AS product_category,
        star_rating,
        helpful_votes,
        total_votes,
        vine,
        verified_purchase,
        review_headline,
        review_body,
        review_date,
        coalesce(trim(review_id), '') AS parsed_review_id,
        CASE trim(star_rating) WHEN '1' THEN 1 WHEN '2' THEN 2 WHEN '3' THEN 3 WHEN '4' THEN 4 WHEN '5' THEN 5 END
            AS parsed_star_rating,
        try_cast(trim(helpful_votes) AS INTEGER) AS parsed_helpful_votes,
        try_cast(trim(total_votes) AS INTEGER) AS parsed_total_votes,
        CASE WHEN trim(review_date) LIKE '____-__-__' THEN try_cast(trim(review_date) AS DATE) END AS parsed_review_date
    FROM {raw_reviews}
) AS parsed
