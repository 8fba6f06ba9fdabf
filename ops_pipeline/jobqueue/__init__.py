"""The ops job queue: typed jobs in a database table with priority, expiry, approvals, retries and history."""
