-- COs still unreconciled in the latest settlement runs, aged in days from their business date to
-- business_today() (today in OPS_TIMEZONE), in buckets 0-1, 2-3, 4-7, 8-30, >30. Amounts in minor units.
CREATE OR REPLACE VIEW settlement_aging AS
WITH open AS (
    SELECT r.result_id, r.business_date, r.internal_ids[1] AS falcon_operation_id, r.currency,
           r.internal_amount_minor AS amount_minor, business_today() - r.business_date AS age_days
    FROM recon_results r WHERE r.recon = 'settlement' AND r.status = 'unmatched_internal'
)
SELECT o.*, c.merchant_id, c.psp_id,
       CASE WHEN age_days <= 1 THEN '0-1' WHEN age_days <= 3 THEN '2-3' WHEN age_days <= 7 THEN '4-7'
            WHEN age_days <= 30 THEN '8-30' ELSE '>30' END AS age_bucket
FROM open o
LEFT JOIN (SELECT falcon_operation_id, merchant_id, psp_id FROM lake_balance_operations
           WHERE source = 'CO' AND type NOT IN ('psp_fee', 'dispute_fee', 'rolling_reserve', 'reserve_expiry')
          ) c USING (falcon_operation_id);
