"""Observability: Prometheus metrics (`metrics`, `state`, `exposition`), structured logs and tracing."""
