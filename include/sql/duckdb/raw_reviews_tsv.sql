-- The raw TSV files {source_files} with the 15 source fields as strings ({columns}) and
-- the source file each row came from ({source_file}).
-- No quoting or escaping, as in the dataset; empty fields stay empty strings. Lines the
-- reader cannot split into exactly 15 fields, or cannot decode as UTF-8, are not returned
-- here: DuckDB records them (file, line, error) in its reject_errors table.
SELECT
    {source_file} AS source_file,
    CAST(NULL AS BIGINT) AS source_line,
    15 AS column_count,
    false AS has_invalid_utf8,
    * EXCLUDE (filename)
FROM read_csv(
    {source_files},
    columns = {columns},
    delim = chr(9), quote = '', escape = '', header = true, nullstr = chr(0),
    auto_detect = false, filename = true, store_rejects = true, max_line_size = 4194304
)
