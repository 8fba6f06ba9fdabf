-- Reconciliation results in force: the rows of the latest run of each (recon, business_date); earlier runs
-- stay in lake_recon_results as history. Amounts are integer minor units (difference = internal - external).
CREATE OR REPLACE VIEW recon_results AS
SELECT * FROM lake_recon_results
QUALIFY rank() OVER (PARTITION BY recon, business_date ORDER BY created_at DESC, run_id DESC) = 1;
