-- Merchant context in force: fee_percent in percent, fee_fixed in major units.
CREATE OR REPLACE VIEW merchant_context AS
SELECT m.psp_id, m.local_merchant_id, m.shop_id, m.currency, m.merchant_id, m.balance_shop_id,
       CAST(m.fee_percent_micros * 0.000001 AS DECIMAL(12, 6)) AS fee_percent,
       CAST(m.fee_fixed_minor * c.unit AS DECIMAL(38, 4)) AS fee_fixed,
       m.loaded_at
FROM lake_merchant_context m JOIN currencies c ON c.code = m.currency;
