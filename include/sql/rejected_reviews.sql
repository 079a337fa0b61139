-- The quarantined rows of {classified}: where they came from, why, and their raw fields.
SELECT
    source_file,
    source_line,
    review_id,
    split_part(reject_reason, ':', 1) AS reject_field,
    reject_reason,
    marketplace,
    customer_id,
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
    review_date
FROM {classified}
WHERE reject_reason IS NOT NULL
