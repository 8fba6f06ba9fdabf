"""G2P disbursements (the OpenG2P G2P Bridge, cash mode): benefit programs, envelopes of
government-to-person payments, the batches partners send them in, and each step's state.

Plain Python: the Partner API (`ops_pipeline.api.g2p`) and the CLI (`ops_pipeline.cli.disbursements`)
are thin adapters over these functions. Errors are `G2PError`s carrying OpenG2P's error codes.
"""
