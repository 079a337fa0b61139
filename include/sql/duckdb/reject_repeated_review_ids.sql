-- The review-id rule of classify_reviews.sql, applied to the local engine's table classified, whose
-- reject_reason starts as field_reject_reason: among the rows that pass every field rule, rows sharing
-- an id with different content are all quarantined, and of rows sharing an id with identical content
-- the first by source file name is kept. The window sees only the rows whose id repeats, by rowid:
-- classify_reviews.sql's window over every row with its text is most of DuckDB's classification time.
UPDATE classified SET reject_reason = repeated.reject_reason
FROM (
    SELECT
        rowid AS row_id,
        CASE
            WHEN min(row_hash) OVER (PARTITION BY parsed_review_id) <> max(row_hash) OVER (PARTITION BY parsed_review_id)
                THEN 'review_id: shared by rows with different content'
            WHEN row_number() OVER (PARTITION BY parsed_review_id ORDER BY source_file) > 1
                THEN 'review_id: duplicate of an identical row'
        END AS reject_reason
    FROM classified
    WHERE field_reject_reason IS NULL
      AND parsed_review_id IN (
          SELECT parsed_review_id
          FROM classified
          WHERE field_reject_reason IS NULL
          GROUP BY parsed_review_id
          HAVING count(*) > 1
      )
) AS repeated
WHERE classified.rowid = repeated.row_id AND repeated.reject_reason IS NOT NULL
