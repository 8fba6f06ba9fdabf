-- The transaction log, money in major units (DECIMAL(38,4)); amount_minor keeps the exact integer.
CREATE OR REPLACE VIEW balance_operations AS
SELECT o.uuid, o.external_reference,
       CAST(o.amount_minor * c.unit AS DECIMAL(38, 4)) AS amount,
       o.amount_minor, o.currency, o.type, o.falcon_operation_id, o.source, o.operation_date,
       o.recorded_at, o.local_merchant_id, o.shop_id, o.balance_shop_id, o.psp_id, o.merchant_id, o.ingest_id
FROM lake_balance_operations o JOIN currencies c ON c.code = o.currency;
