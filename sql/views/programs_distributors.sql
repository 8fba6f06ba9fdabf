-- Gift-card records from the operational DB (`db_gc_*`, copied in by `analytics.connect` for analysts:
-- `ops-pipeline sql`, the Dagster DuckDB resource). UPI VPAs, bank accounts and contacts arrive masked.
-- Amounts and percentages are exact DECIMALs. (Loaded after merchant_balances.sql, whose view it reads.)

-- Program assignments: which party sells which program, on what terms, from when to when.
CREATE OR REPLACE VIEW program_assignments AS
SELECT a.id AS assignment_id, a.party_id, a.program_id, CAST(a.starts_on AS DATE) AS starts_on,
       CAST(a.ends_on AS DATE) AS ends_on, a.status,
       CAST(a.commission_percent AS DECIMAL(9, 4)) AS commission_percent,
       CAST(a.discount_percent AS DECIMAL(9, 4)) AS discount_percent, a.agreement_reference,
       CAST(a.starts_on AS DATE) <= business_today()
           AND coalesce(CAST(a.ends_on AS DATE) >= business_today(), true) AS in_force_today
FROM db_gc_assignments a;

-- Programs: pricing, bank restriction state of their VPA list (pending | pushed | failed), commission rules
-- (JSON), with how many parties sell each today.
CREATE OR REPLACE VIEW programs AS
SELECT p.program_id, p.name, p.currency, p.status, p.restriction_state, p.principal_ids,
       list_transform(p.denominations, lambda d: CAST(d AS DECIMAL(38, 4))) AS denominations,
       CAST(p.min_value AS DECIMAL(38, 4)) AS min_value, CAST(p.max_value AS DECIMAL(38, 4)) AS max_value,
       CAST(p.issuance_fee_percent AS DECIMAL(9, 4)) AS issuance_fee_percent, p.validity_days,
       CAST(p.commission_rules AS JSON) AS commission_rules,
       (SELECT count(*) FROM program_assignments a
        WHERE a.program_id = p.program_id AND a.in_force_today) AS parties_selling,
       p.version, p.updated_by, CAST(p.updated_at AS TIMESTAMPTZ) AS updated_at
FROM db_gc_programs p;

-- Distributors and B2B customers with their wallet (the ledger account's balance, as `merchant_balances`).
CREATE OR REPLACE VIEW distributors AS
SELECT p.party_id, p.kind, p.name, p.status, p.wallet_account_id, p.wallet_currency,
       coalesce(b.settled_balance, 0) AS wallet_settled, coalesce(b.held, 0) AS wallet_held,
       coalesce(b.available, 0) AS wallet_available,
       (SELECT list(a.program_id ORDER BY a.program_id) FROM program_assignments a
        WHERE a.party_id = p.party_id AND a.in_force_today) AS programs_today,
       p.bank_account, p.contact, p.version, CAST(p.updated_at AS TIMESTAMPTZ) AS updated_at
FROM db_gc_parties p
LEFT JOIN merchant_balances b ON b.merchant_id = p.wallet_account_id AND b.currency = p.wallet_currency;
