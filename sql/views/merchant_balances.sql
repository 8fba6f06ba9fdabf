-- Balance snapshots, one row per (merchant_id, currency) per snapshot: the history of balances.
CREATE OR REPLACE VIEW balance_snapshots AS
SELECT s.snapshot_id, s.snapshot_at, s.lake_version, s.merchant_id, s.currency,
       CAST(s.confirmed_minor * c.unit AS DECIMAL(38, 4)) AS confirmed_balance,
       CAST(s.settled_minor * c.unit AS DECIMAL(38, 4)) AS settled_balance,
       CAST(s.held_minor * c.unit AS DECIMAL(38, 4)) AS held,
       CAST(s.available_minor * c.unit AS DECIMAL(38, 4)) AS available
FROM lake_balance_snapshots s JOIN currencies c ON c.code = s.currency;

-- Balances exact when the connection was opened, one row per (merchant_id, currency): the latest snapshot
-- plus the log entries committed after its version, with the holds active now (like `ledger balance`).
CREATE OR REPLACE VIEW merchant_balances AS
WITH latest AS (
    SELECT merchant_id, currency, confirmed_minor, settled_minor FROM lake_balance_snapshots
    WHERE snapshot_id = (SELECT arg_max(snapshot_id, snapshot_at) FROM lake_balance_snapshots)
), sums AS (
    SELECT merchant_id, currency,
           coalesce(l.confirmed_minor, 0) + coalesce(n.confirmed_minor, 0) AS confirmed_minor,
           coalesce(l.settled_minor, 0) + coalesce(n.settled_minor, 0) AS settled_minor
    FROM latest l FULL JOIN balance_changes_since_snapshot n USING (merchant_id, currency)
), live AS (
    SELECT merchant_id, currency, coalesce(s.confirmed_minor, 0) AS confirmed_minor,
           coalesce(s.settled_minor, 0) AS settled_minor, coalesce(h.held_minor, 0) AS held_minor
    FROM sums s FULL JOIN balance_holds_now h USING (merchant_id, currency)
)
SELECT merchant_id, currency,
       CAST(confirmed_minor * c.unit AS DECIMAL(38, 4)) AS confirmed_balance,
       CAST(settled_minor * c.unit AS DECIMAL(38, 4)) AS settled_balance,
       CAST(held_minor * c.unit AS DECIMAL(38, 4)) AS held,
       CAST((settled_minor - held_minor) * c.unit AS DECIMAL(38, 4)) AS available,
       get_current_timestamp() AS as_of
FROM live JOIN currencies c ON c.code = live.currency;
