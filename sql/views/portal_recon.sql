-- Principal portal exports (lake_portal_vouchers): per principal and export date, the lines of its latest
-- export (a file loaded later for the same date supersedes the earlier one). Face values in minor units.
CREATE OR REPLACE VIEW portal_vouchers AS
SELECT principal_id, export_date, voucher_id, row_number, face_value_minor, currency, status, expiry_date,
       redeemed_at, file_name, export_id, loaded_at
FROM lake_portal_vouchers
QUALIFY dense_rank() OVER (PARTITION BY principal_id, export_date ORDER BY loaded_at DESC, export_id) = 1;

-- Export lines that did not parse, with every reason (field, column and value).
CREATE OR REPLACE VIEW portal_quarantine AS
SELECT principal_id, export_date, file_name, row_number, reason, raw, export_id, loaded_at
FROM lake_portal_quarantine;

-- The portal reconciliation in force: the rows of the latest run of each business date, one per voucher
-- (or repeated export line), with its voucher id and, for export lines, the principal.
-- kind: matched | differs (face value, status or expiry) | missing_on_portal | not_ours | duplicate | manual.
CREATE OR REPLACE VIEW portal_recon AS
SELECT business_date,
       split_part(coalesce(external_ids[1], ''), ':', 1) AS principal_id,
       coalesce(split_part(internal_ids[1], '@', 1),
                split_part(split_part(external_ids[1], ':', 2), '@', 1)) AS voucher_id,
       CASE WHEN status = 'matched' THEN 'matched'
            WHEN status = 'matched_with_difference' THEN 'differs'
            WHEN status = 'manual' THEN 'manual'
            WHEN reason LIKE 'duplicate:%' THEN 'duplicate'
            WHEN status = 'unmatched_internal' THEN 'missing_on_portal'
            ELSE 'not_ours' END AS kind,
       status, internal_amount_minor AS face_value_ours_minor, external_amount_minor AS face_value_portal_minor,
       amount_difference_minor, currency, reason, decided_by, note, run_id, created_at
FROM lake_recon_results
WHERE recon = 'portal'
QUALIFY rank() OVER (PARTITION BY business_date ORDER BY created_at DESC, run_id DESC) = 1;
