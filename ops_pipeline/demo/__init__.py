"""`ops-pipeline demo`: a realistic sample world and one end-to-end run of every pipeline."""
