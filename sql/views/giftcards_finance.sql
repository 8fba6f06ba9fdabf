-- Commission and discount of every gift-card sale (lake_commission_lines, partitioned by sale_date in
-- OPS_TIMEZONE): minor units and DECIMAL major units; `rule_key` names the terms applied (see
-- ops_pipeline.giftcards.commissions). Whole-month tier adjustments are on the invoices, not here.
CREATE OR REPLACE VIEW commissions AS
SELECT l.sale_date, l.sold_at, l.sale_id, l.voucher_id, l.party_id, l.program_id, l.currency, l.rule_key,
       l.tier_from, l.face_value_minor, l.price_paid_minor, l.discount_minor, l.commission_minor,
       CAST(l.face_value_minor AS DECIMAL(38, 4)) * c.unit AS face_value,
       CAST(l.discount_minor AS DECIMAL(38, 4)) * c.unit AS discount,
       CAST(l.commission_minor AS DECIMAL(38, 4)) * c.unit AS commission
FROM lake_commission_lines l
LEFT JOIN currencies c ON c.code = l.currency;

-- Invoices and credit notes (operational DB, copied in for analysts' entry points) with what was paid and
-- credited, what is outstanding and how many days overdue (today in OPS_TIMEZONE).
CREATE OR REPLACE VIEW invoices AS
WITH paid AS (SELECT invoice_number, sum(amount_minor) AS paid_minor FROM db_gc_invoice_payments GROUP BY ALL),
credited AS (SELECT corrects, -sum(total_minor) AS credited_minor FROM db_gc_invoices
             WHERE kind = 'credit_note' GROUP BY ALL)
SELECT i.number, i.kind, i.party_id, i.month, i.currency, i.sales, i.commission_minor, i.adjustment_minor,
       i.total_minor, coalesce(p.paid_minor, 0) AS paid_minor, coalesce(cr.credited_minor, 0) AS credited_minor,
       CASE WHEN i.kind = 'invoice'
            THEN greatest(i.total_minor - coalesce(p.paid_minor, 0) - coalesce(cr.credited_minor, 0), 0)
            ELSE 0 END AS outstanding_minor,
       CAST(i.total_minor AS DECIMAL(38, 4)) * c.unit AS total,
       i.corrects, i.issued_on, i.due_on,
       CASE WHEN i.kind = 'invoice' THEN greatest(date_diff('day', i.due_on, business_today()), 0) END
           AS days_overdue
FROM db_gc_invoices i
LEFT JOIN paid p ON p.invoice_number = i.number
LEFT JOIN credited cr ON cr.corrects = i.number
LEFT JOIN currencies c ON c.code = i.currency;
