-- SageMaker Data Capture of one endpoint: every request and answer as JSON lines under
-- <capture destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/ (JSON bodies captured as text).
CREATE EXTERNAL TABLE IF NOT EXISTS {database}.{capture_table} (
  captureData struct<
    endpointInput: struct<observedContentType: string, mode: string, data: string, encoding: string>,
    endpointOutput: struct<observedContentType: string, mode: string, data: string, encoding: string>
  >,
  eventMetadata struct<eventId: string, inferenceId: string, inferenceTime: string>,
  eventVersion string
)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
LOCATION '{capture_location}'
