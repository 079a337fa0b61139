-- One string column per raw line of the staged TSV files of this run, so that lines with the
-- wrong number of fields are classified rather than silently padded or cut by the SerDe.
CREATE EXTERNAL TABLE IF NOT EXISTS {database}.{raw_table} (line string)
ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.RegexSerDe'
WITH SERDEPROPERTIES ('input.regex' = '^(.*)$')
LOCATION '{raw_location}'
TBLPROPERTIES ('skip.header.line.count' = '1')
