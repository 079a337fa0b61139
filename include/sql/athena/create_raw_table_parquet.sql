-- The staged Parquet files of this run, typed as the public Amazon Customer Reviews Parquet.
CREATE EXTERNAL TABLE IF NOT EXISTS {database}.{raw_table} (
    marketplace string, customer_id string, review_id string, product_id string,
    product_parent string, product_title string, product_category string, star_rating int,
    helpful_votes int, total_votes int, vine string, verified_purchase string,
    review_headline string, review_body string, review_date date
)
STORED AS PARQUET
LOCATION '{raw_location}'
