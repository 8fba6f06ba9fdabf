"""ops-pipeline: operations platform for payment and voucher businesses."""

__version__ = "0.1.0"
