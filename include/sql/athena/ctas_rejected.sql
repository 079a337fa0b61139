-- Quarantined rows of this snapshot with their reasons, in a snapshot-scoped location.
CREATE TABLE {database}.{rejected_table}
WITH (format = 'PARQUET', external_location = '{rejected_location}')
AS {rejected_select}
