"""G2P disbursements (the OpenG2P G2P Bridge, cash mode): benefit programs, envelopes of
government-to-person payments, the batches partners send them in, and each step's state; the pipeline
that runs the steps (`pipeline.run_step`: fa_resolution, funds_check, funds_block, disburse, notify) through
the connectors (`connectors`: ID mapper, sponsor bank, outbox notifications).

Plain Python: the Partner API (`ops_pipeline.api.g2p`) and the CLI (`ops_pipeline.cli.disbursements`)
are thin adapters over these functions. Errors are `G2PError`s carrying OpenG2P's error codes.
"""
