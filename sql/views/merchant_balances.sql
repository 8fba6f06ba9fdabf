-- One row per (merchant_id, currency) from the latest balance snapshot (refreshed every 15 minutes);
-- `ops-pipeline ledger balance` and GET /api/balances/{id} are exact at the moment of the call.
CREATE OR REPLACE VIEW balance_snapshots AS
SELECT s.snapshot_id, s.snapshot_at, s.lake_version, s.merchant_id, s.currency,
       CAST(s.confirmed_minor * c.unit AS DECIMAL(38, 4)) AS confirmed_balance,
       CAST(s.settled_minor * c.unit AS DECIMAL(38, 4)) AS settled_balance,
       CAST(s.held_minor * c.unit AS DECIMAL(38, 4)) AS held,
       CAST(s.available_minor * c.unit AS DECIMAL(38, 4)) AS available
FROM lake_balance_snapshots s JOIN currencies c ON c.code = s.currency;

CREATE OR REPLACE VIEW merchant_balances AS
SELECT merchant_id, currency, confirmed_balance, settled_balance, held, available, snapshot_at AS as_of
FROM balance_snapshots
WHERE snapshot_id = (SELECT arg_max(snapshot_id, snapshot_at) FROM lake_balance_snapshots);
