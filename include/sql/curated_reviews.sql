-- The accepted rows of {classified}, typed as the curated schema; product_category last
-- because both engines write the partition column last.
SELECT
    marketplace,
    customer_id,
    trim(review_id) AS review_id,
    product_id,
    product_parent,
    product_title,
    CAST(trim(star_rating) AS INTEGER) AS star_rating,
    CAST(trim(helpful_votes) AS INTEGER) AS helpful_votes,
    CAST(trim(total_votes) AS INTEGER) AS total_votes,
    vine,
    verified_purchase,
    review_headline,
    review_body,
    CAST(trim(review_date) AS DATE) AS review_date,
    product_category
FROM {classified}
WHERE reject_reason IS NULL
  AND {category_filter}
