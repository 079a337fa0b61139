-- Every served prediction of one endpoint (from Data Capture: one row per review of each answer) with the
-- reward recorded for it, if any: which variant and model version served it, when, and what it was worth.
CREATE OR REPLACE VIEW {database}.{view} AS
WITH served AS (
  SELECT
    regexp_extract("$path", '/([^/]+)/[0-9]{{4}}/[0-9]{{2}}/[0-9]{{2}}/[0-9]{{2}}/[^/]+$', 1) AS variant,
    from_iso8601_timestamp(eventMetadata.inferenceTime) AS served_at,
    json_extract_scalar(item, '$.inference_id') AS inference_id,
    json_extract_scalar(item, '$.model_version') AS model_version,
    json_extract_scalar(item, '$.label') AS label
  FROM {database}.{capture_table}
  CROSS JOIN UNNEST(CAST(json_extract(captureData.endpointOutput.data, '$.predictions') AS array(json))) AS t (item)
)
SELECT
  s.variant, s.model_version, s.inference_id, s.label, s.served_at,
  r.reward, from_iso8601_timestamp(r.recorded_at) AS recorded_at
FROM served AS s
LEFT JOIN {database}.{rewards_table} AS r ON r.inference_id = s.inference_id
