-- The raw Parquet table {database}.{raw_table} with every source field as a string.
(
    SELECT
        "$path" AS source_file,
        CAST(NULL AS BIGINT) AS source_line,
        15 AS column_count,
        false AS has_invalid_utf8,
        marketplace, customer_id, review_id, product_id, product_parent, product_title,
        product_category,
        CAST(star_rating AS VARCHAR) AS star_rating,
        CAST(helpful_votes AS VARCHAR) AS helpful_votes,
        CAST(total_votes AS VARCHAR) AS total_votes,
        vine, verified_purchase, review_headline, review_body,
        CAST(review_date AS VARCHAR) AS review_date
    FROM {database}.{raw_table}
)
