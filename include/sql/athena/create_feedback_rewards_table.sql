-- Reward events of one endpoint: one JSON line per object under <data root>/endpoint/<endpoint>/feedback/rewards/
-- (written by include/serving/s3_feedback.py: S3RewardWriter).
CREATE EXTERNAL TABLE IF NOT EXISTS {database}.{rewards_table} (
  inference_id string,
  reward int,
  variant string,
  model_version string,
  recorded_at string
)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
LOCATION '{rewards_location}'
