-- Merchant context in force: fee_percent and reserve_percent in percent, fee_fixed and dispute_fee in major
-- units, reserve_days in days (ledger/merchants.py; tables written before them read 0).
CREATE OR REPLACE VIEW merchant_context AS
SELECT m.psp_id, m.local_merchant_id, m.shop_id, m.currency, m.merchant_id, m.balance_shop_id,
       CAST(m.fee_percent_micros * 0.000001 AS DECIMAL(12, 6)) AS fee_percent,
       CAST(m.fee_fixed_minor * c.unit AS DECIMAL(38, 4)) AS fee_fixed,
       CAST(coalesce(m.dispute_fee_minor, 0) * c.unit AS DECIMAL(38, 4)) AS dispute_fee,
       CAST(coalesce(m.reserve_percent_micros, 0) * 0.000001 AS DECIMAL(12, 6)) AS reserve_percent,
       coalesce(m.reserve_days, 0) AS reserve_days,
       m.loaded_at
FROM (SELECT * FROM lake_merchant_context UNION ALL BY NAME  -- a table from before these columns: null
      SELECT NULL::BIGINT AS dispute_fee_minor, NULL::BIGINT AS reserve_percent_micros,
             NULL::BIGINT AS reserve_days WHERE FALSE) m
JOIN currencies c ON c.code = m.currency;
