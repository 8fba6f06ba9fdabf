"""The gift-card business's records: principals and tenants, programs, distributors and B2B customers,
program assignments and vouchers. Plain Python over the operational DB; voucher events also go to Delta."""
