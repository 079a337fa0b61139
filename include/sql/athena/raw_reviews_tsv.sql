-- The raw table {database}.{raw_table} split into the 15 source fields (Athena reads undecodable bytes as U+FFFD).
-- Empty lines are no rows, as DuckDB's reader skips them too (Hadoop's reader ends lines at LF, CRLF or CR).
(
    SELECT
        source_file,
        CAST(NULL AS BIGINT) AS source_line,
        cardinality(fields) AS column_count,
        strpos(line, U&'\FFFD') > 0 AS has_invalid_utf8,
        element_at(fields, 1) AS marketplace,
        element_at(fields, 2) AS customer_id,
        element_at(fields, 3) AS review_id,
        element_at(fields, 4) AS product_id,
        element_at(fields, 5) AS product_parent,
        element_at(fields, 6) AS product_title,
        element_at(fields, 7) AS product_category,
        element_at(fields, 8) AS star_rating,
        element_at(fields, 9) AS helpful_votes,
        element_at(fields, 10) AS total_votes,
        element_at(fields, 11) AS vine,
        element_at(fields, 12) AS verified_purchase,
        element_at(fields, 13) AS review_headline,
        element_at(fields, 14) AS review_body,
        element_at(fields, 15) AS review_date
    FROM (SELECT "$path" AS source_file, line, split(line, chr(9)) AS fields FROM {database}.{raw_table} WHERE line <> '')
)
