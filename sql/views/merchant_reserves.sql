-- Money in the merchant's reserve (ledger/split.py, ledger/reserves.py) per merchant, currency and source:
-- taken by `reserve` operations and captures' `rolling_reserve`, given back by `reserve_release` and, when
-- reserve_days have passed, `reserve_expiry`. Reserved money is in neither the confirmed (CO) nor the
-- settled (RO) balance.
CREATE OR REPLACE VIEW merchant_reserves AS
SELECT merchant_id, currency, source,
       -sum(amount) AS reserved,
       -sum(amount) FILTER (WHERE type IN ('reserve', 'rolling_reserve')) AS taken,
       sum(amount) FILTER (WHERE type IN ('reserve_release', 'reserve_expiry')) AS returned,
       count(*) FILTER (WHERE type IN ('reserve', 'rolling_reserve')) AS reserves
FROM balance_operations
WHERE type IN ('reserve', 'rolling_reserve', 'reserve_release', 'reserve_expiry')
GROUP BY ALL;
