-- Raw rows exactly as received, with ingest id, arrival time, file name and row number.
CREATE OR REPLACE VIEW confirmed_operations AS SELECT * FROM lake_confirmed_operations;
CREATE OR REPLACE VIEW reconciled_operations AS SELECT * FROM lake_reconciled_operations;
