-- The raw TSV files {source_files} as one string column per source field.
-- Each line is read whole (delimiter \x01, no quoting) and split here, so a line with
-- the wrong number of fields is kept and classified instead of failing the read.
-- Lines DuckDB cannot decode (invalid UTF-8) land in its reject_errors table.
SELECT
    filename AS source_file,
    CAST(NULL AS BIGINT) AS source_line,
    len(fields) AS column_count,
    false AS has_invalid_utf8,
    fields[1] AS marketplace,
    fields[2] AS customer_id,
    fields[3] AS review_id,
    fields[4] AS product_id,
    fields[5] AS product_parent,
    fields[6] AS product_title,
    fields[7] AS product_category,
    fields[8] AS star_rating,
    fields[9] AS helpful_votes,
    fields[10] AS total_votes,
    fields[11] AS vine,
    fields[12] AS verified_purchase,
    fields[13] AS review_headline,
    fields[14] AS review_body,
    fields[15] AS review_date
FROM (
    SELECT filename, string_split(line, chr(9)) AS fields
    FROM read_csv(
        {source_files},
        columns = {{'line': 'VARCHAR'}},
        delim = chr(1), quote = '', escape = '', header = true,
        auto_detect = false, filename = true, store_rejects = true,
        max_line_size = 4194304
    )
)
