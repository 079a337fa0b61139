-- Raw Parquet files {source_files} with every source field as a string, like the TSV reader.
SELECT
    {source_file} AS source_file,
    CAST(NULL AS BIGINT) AS source_line,
    15 AS column_count,
    false AS has_invalid_utf8,
    CAST(marketplace AS VARCHAR) AS marketplace,
    CAST(customer_id AS VARCHAR) AS customer_id,
    CAST(review_id AS VARCHAR) AS review_id,
    CAST(product_id AS VARCHAR) AS product_id,
    CAST(product_parent AS VARCHAR) AS product_parent,
    CAST(product_title AS VARCHAR) AS product_title,
    CAST(product_category AS VARCHAR) AS product_category,
    CAST(star_rating AS VARCHAR) AS star_rating,
    CAST(helpful_votes AS VARCHAR) AS helpful_votes,
    CAST(total_votes AS VARCHAR) AS total_votes,
    CAST(vine AS VARCHAR) AS vine,
    CAST(verified_purchase AS VARCHAR) AS verified_purchase,
    CAST(review_headline AS VARCHAR) AS review_headline,
    CAST(review_body AS VARCHAR) AS review_body,
    CAST(review_date AS VARCHAR) AS review_date
FROM read_parquet({source_files}, filename = true)
