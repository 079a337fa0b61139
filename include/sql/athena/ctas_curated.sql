-- Curated Parquet of this snapshot, partitioned by product_category, in a snapshot-scoped location.
CREATE TABLE {database}.{curated_table}
WITH (
    format = 'PARQUET',
    write_compression = 'SNAPPY',
    external_location = '{curated_location}',
    partitioned_by = ARRAY['product_category']
)
AS {curated_select}
