-- End-of-month turnover per merchant, currency and source, by operation date in UTC: the amount of each
-- operation type (ledger/split.py) as a positive figure of what it moved; `net` is the signed sum.
CREATE OR REPLACE VIEW monthly_turnover AS
SELECT date_trunc('month', operation_date AT TIME ZONE 'UTC')::DATE AS month, merchant_id, currency, source,
       count(*) FILTER (WHERE type = 'capture') AS captures,
       coalesce(sum(amount) FILTER (WHERE type = 'capture'), 0) AS captured,
       coalesce(-sum(amount) FILTER (WHERE type = 'refund'), 0) AS refunded,
       coalesce(-sum(amount) FILTER (WHERE type = 'psp_fee'), 0) AS fees,
       coalesce(-sum(amount) FILTER (WHERE source = 'PAYOUT'), 0) AS paid_out,
       coalesce(sum(amount) FILTER (WHERE source = 'ADJUSTMENT'), 0) AS adjusted,
       coalesce(-sum(amount) FILTER (WHERE type = 'chargeback'), 0) AS charged_back,
       coalesce(-sum(amount) FILTER (WHERE type = 'dispute_fee'), 0) AS dispute_fees,
       coalesce(sum(amount) FILTER (WHERE type = 'chargeback_reversal'), 0) AS chargebacks_reversed,
       coalesce(-sum(amount) FILTER (WHERE type = 'withdrawal'), 0) AS withdrawn,
       coalesce(-sum(amount) FILTER (WHERE type = 'cashback'), 0) AS cashback,
       coalesce(sum(amount) FILTER (WHERE type = 'fee_adjustment'), 0) AS fees_adjusted,
       coalesce(-sum(amount) FILTER (WHERE type IN ('reserve', 'rolling_reserve')), 0) AS reserved,
       coalesce(sum(amount) FILTER (WHERE type IN ('reserve_release', 'reserve_expiry')), 0) AS reserve_returned,
       sum(amount) AS net
FROM balance_operations
GROUP BY ALL;
