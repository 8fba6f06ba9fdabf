"""The gift-card business in Dagster: commissions, invoices, their payments and the transfers to principals;
`defs` in `defs.py` declares them all."""
