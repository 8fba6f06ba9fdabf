-- Rejected input rows, kept forever; `status` is resolved once a later ingest or reprocess took the row.
CREATE OR REPLACE VIEW ledger_quarantine AS
SELECT q.quarantine_id, q.source, q.reason_code, q.reason, q.file_name, q.row_number,
       q.falcon_operation_id, q.raw, q.ingest_id, q.quarantined_at,
       CASE WHEN r.quarantine_id IS NULL THEN 'open' ELSE 'resolved' END AS status,
       r.resolved_at, q.file_sha256
FROM lake_ledger_quarantine q
LEFT JOIN (SELECT quarantine_id, min(resolved_at) AS resolved_at FROM lake_quarantine_resolutions GROUP BY 1) r
  USING (quarantine_id);
