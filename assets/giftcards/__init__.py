"""The gift-card business in Dagster: commissions, invoices and their payments."""
