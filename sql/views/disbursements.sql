-- G2P disbursements with their recon state, read from the operational DB (`db_g2p_*`, copied in by
-- `analytics.connect`). Amounts are integer minor units; `amount` is exact in major units.
-- recon_state: reconciled (a D line matched it), reversed (an RD line reversed it), pending (shipped, on
-- no statement yet), not_shipped.
CREATE OR REPLACE VIEW disbursements AS
SELECT d.id AS disbursement_id, d.envelope_id, d.batch_id, d.program, d.currency, d.beneficiary_id,
       d.beneficiary_name, d.amount_minor, CAST(d.amount_minor * c.unit AS DECIMAL(38, 4)) AS amount,
       d.narrative, d.status, d.latest_error, d.cancelled, d.received_at, d.shipped_at, d.reconciled_at,
       d.reversed_at, d.reversal_reason,
       CASE WHEN d.reversed_at IS NOT NULL THEN 'reversed'
            WHEN d.reconciled_at IS NOT NULL THEN 'reconciled'
            WHEN d.shipped_at IS NOT NULL THEN 'pending'
            ELSE 'not_shipped' END AS recon_state
FROM db_g2p_disbursements d
JOIN currencies c ON c.code = d.currency;

-- Each shipped disbursement with the statement entries that reconciled (and reversed) it, if any.
CREATE OR REPLACE VIEW disbursement_recon AS
SELECT d.disbursement_id, d.envelope_id, d.program, d.currency, d.amount_minor, d.amount, d.status,
       d.recon_state, d.shipped_at, r.remittance_statement_id, r.remittance_entry_sequence,
       r.remittance_bank_reference, r.remittance_entry_date, r.remittance_value_date, r.reconciled_at,
       r.reversal_statement_id IS NOT NULL AS reversal_found, r.reversal_statement_id,
       r.reversal_entry_sequence, r.reversal_entry_date, r.reversal_value_date, r.reversal_reason,
       r.reversed_at
FROM disbursements d
LEFT JOIN db_g2p_disbursement_recons r ON r.disbursement_id = d.disbursement_id
WHERE d.shipped_at IS NOT NULL;

-- Statement entries that reconciled nothing (DUPLICATE_DISBURSEMENT, INVALID_REVERSAL, INVALID_DISBURSEMENT_ID,
-- INVALID_DISBURSEMENT_AMOUNT, INVALID_DISBURSEMENT_CURRENCY_CODE, DISBURSEMENT_NOT_SHIPPED), with the
-- statement's program and account.
CREATE OR REPLACE VIEW disbursement_recon_errors AS
SELECT e.statement_id, s.program, s.account, s.file_name, e.entry_sequence, e.direction, e.entry_date,
       e.value_date, e.amount_minor, e.currency, e.error_code, e.detail, e.disbursement_id, e.bank_reference,
       e.created_at
FROM db_g2p_recon_errors e
JOIN db_g2p_statements s USING (statement_id);

-- The daily `disbursement_status` snapshots of the lake (the Dagster asset), the latest one of each day:
-- the disbursements of the envelopes scheduled on `status_date` as they stood at `snapshot_at`.
CREATE OR REPLACE VIEW disbursement_status AS
SELECT * EXCLUDE (snapshot_rank)
FROM (SELECT s.*, dense_rank() OVER (PARTITION BY status_date ORDER BY snapshot_at DESC, snapshot_id DESC)
             AS snapshot_rank
      FROM lake_disbursement_status s)
WHERE snapshot_rank = 1;
