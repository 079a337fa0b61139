-- Point the stable name at this snapshot: readers switch atomically, a retry re-points to the same table.
CREATE OR REPLACE VIEW {database}.reviews_curated AS SELECT * FROM {database}.{curated_table}
