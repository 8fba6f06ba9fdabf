-- Reconciliation results in force: the rows of the latest run of each (recon, business_date); earlier runs
-- stay in lake_recon_results as history. Amounts are integer minor units (difference = internal - external).
CREATE OR REPLACE VIEW recon_results AS
SELECT * FROM lake_recon_results
QUALIFY rank() OVER (PARTITION BY recon, business_date ORDER BY created_at DESC, run_id DESC) = 1;

-- A break's id, stable across re-runs: the same records unmatched (or matched with a difference) on the same
-- date keep the same id. 16 hex digits of SHA-256 over recon, date, status and the sorted ids of both sides.
CREATE OR REPLACE MACRO recon_break_id(recon, business_date, status, internal_ids, external_ids) AS
substr(sha256(concat_ws('|', recon, CAST(business_date AS VARCHAR), status,
                        array_to_string(list_sort(internal_ids), ','),
                        array_to_string(list_sort(external_ids), ','))), 1, 16);

-- Break rows of every run (history), with their stable id.
CREATE OR REPLACE VIEW recon_break_history AS
SELECT recon_break_id(recon, business_date, status, internal_ids, external_ids) AS break_id, *
FROM lake_recon_results WHERE status IN ('unmatched_internal', 'unmatched_external', 'matched_with_difference');

-- Breaks of the latest runs: rows no rule matched or matched with an amount difference, with the time a run
-- first found them. A decision (`recon resolve`) turns a break into a `manual` row at the next run.
CREATE OR REPLACE VIEW recon_breaks AS
SELECT b.break_id, recon, business_date, status, internal_ids, external_ids, internal_amount_minor,
       external_amount_minor, amount_difference_minor, currency, reason, run_id, created_at, f.first_seen_at
FROM (SELECT recon_break_id(recon, business_date, status, internal_ids, external_ids) AS break_id, *
      FROM recon_results
      WHERE status IN ('unmatched_internal', 'unmatched_external', 'matched_with_difference')) b
JOIN (SELECT break_id, min(created_at) AS first_seen_at FROM recon_break_history GROUP BY break_id) f
  USING (break_id);
