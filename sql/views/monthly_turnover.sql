-- End-of-month turnover per merchant, currency and source, by operation date in UTC.
CREATE OR REPLACE VIEW monthly_turnover AS
SELECT date_trunc('month', operation_date AT TIME ZONE 'UTC')::DATE AS month, merchant_id, currency, source,
       count(*) FILTER (WHERE type = 'capture') AS captures,
       coalesce(sum(amount) FILTER (WHERE type = 'capture'), 0) AS captured,
       coalesce(-sum(amount) FILTER (WHERE type = 'refund'), 0) AS refunded,
       coalesce(-sum(amount) FILTER (WHERE type = 'psp_fee'), 0) AS fees,
       coalesce(-sum(amount) FILTER (WHERE source = 'PAYOUT'), 0) AS paid_out,
       coalesce(sum(amount) FILTER (WHERE source = 'ADJUSTMENT'), 0) AS adjusted,
       sum(amount) AS net
FROM balance_operations
GROUP BY ALL;
