"""The lakehouse: Delta tables on local disk or S3, read through DuckDB views."""

from ops_pipeline.lake.store import Lake
from ops_pipeline.lake.tables import TABLES

__all__ = ["TABLES", "Lake"]
