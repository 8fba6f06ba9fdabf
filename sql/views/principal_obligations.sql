-- What is owed to gift-card principals (`gc_obligations`, copied in by `analytics.connect` as
-- `db_gc_obligations`): per principal, period and currency, redeemed face value less commission and discount,
-- in integer minor units and exact DECIMAL major units, with its transfer and confirmation. `overdue`: not
-- paid after its due day (OPS_TIMEZONE).
CREATE OR REPLACE VIEW principal_obligations AS
SELECT o.obligation_id, o.principal_id, o.currency, o.period_start, o.period_end, o.due_on, o.vouchers,
       o.gross_minor, o.commission_minor, o.discount_minor, o.amount_minor,
       CAST(o.gross_minor * c.unit AS DECIMAL(38, 4)) AS gross,
       CAST(o.commission_minor * c.unit AS DECIMAL(38, 4)) AS commission,
       CAST(o.discount_minor * c.unit AS DECIMAL(38, 4)) AS discount,
       CAST(o.amount_minor * c.unit AS DECIMAL(38, 4)) AS amount,
       o.commission_percent, o.discount_percent, o.status, o.attempt, o.job_id, o.transfer_id,
       o.statement_entry, o.note, o.paid_at, o.created_at, o.updated_at,
       o.status <> 'paid' AND o.due_on < business_today() AS overdue
FROM db_gc_obligations o
JOIN currencies c ON c.code = o.currency;
