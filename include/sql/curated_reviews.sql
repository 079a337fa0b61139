-- The accepted rows of {classified}, typed as the curated schema; product_category last
-- because both engines write the partition column last.
SELECT
    marketplace,
    customer_id,
    parsed_review_id AS review_id,
    product_id,
    product_parent,
    product_title,
    parsed_star_rating AS star_rating,
    parsed_helpful_votes AS helpful_votes,
    parsed_total_votes AS total_votes,
    vine,
    verified_purchase,
    review_headline,
    review_body,
    parsed_review_date AS review_date,
    product_category
FROM {classified}
WHERE reject_reason IS NULL
  AND {category_filter}
