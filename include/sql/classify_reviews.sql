-- Classify every checked review row ({checked}: check_reviews.sql) with the first reason it is rejected.
-- Runs unchanged on Athena (Trino) and DuckDB; keep it in the dialects' common subset.
-- The review-id rule, among the rows that pass every field rule: rows sharing an id with identical
-- content keep one (the first by source file name) and quarantine the others; rows sharing an
-- id with different content are all quarantined, as nothing tells which one is right.
-- The local engine applies the same rule with duckdb/reject_repeated_review_ids.sql, whose window
-- sees only the rows whose id repeats rather than every row with its text.
SELECT
    checked.*,
    CASE
        WHEN field_reject_reason IS NOT NULL THEN field_reject_reason
        WHEN min(row_hash) OVER (PARTITION BY field_reject_reason, parsed_review_id)
            <> max(row_hash) OVER (PARTITION BY field_reject_reason, parsed_review_id)
            THEN 'review_id: shared by rows with different content'
        WHEN row_number() OVER (PARTITION BY field_reject_reason, parsed_review_id ORDER BY source_file) > 1
            THEN 'review_id: duplicate of an identical row'
    END AS reject_reason
FROM {checked} AS checked
