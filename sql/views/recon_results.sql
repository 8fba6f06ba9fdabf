-- Reconciliation results in force: the rows of the latest run of each (recon, business_date); earlier runs
-- stay in lake_recon_results as history. Amounts are integer minor units (difference = internal - external).
CREATE OR REPLACE VIEW recon_results AS
SELECT * FROM lake_recon_results
QUALIFY rank() OVER (PARTITION BY recon, business_date ORDER BY created_at DESC, run_id DESC) = 1;

-- Breaks of the latest runs: rows no rule matched or matched with an amount difference. A decision
-- (`recon resolve`) turns a break into a `manual` row at the next run.
CREATE OR REPLACE VIEW recon_breaks AS
SELECT result_id AS break_id, recon, business_date, status, internal_ids, external_ids, internal_amount_minor,
       external_amount_minor, amount_difference_minor, currency, reason, run_id, created_at
FROM recon_results WHERE status IN ('unmatched_internal', 'unmatched_external', 'matched_with_difference');
