"""Partner and bank APIs the job actions call: clients, and a simulator (HTTP app or in-process sandbox)."""

from ops_pipeline.partners.clients import Clients, HttpOptions, bank_client, partner_client, sandbox
from ops_pipeline.partners.simulator import Simulator

__all__ = ["Clients", "HttpOptions", "Simulator", "bank_client", "partner_client", "sandbox"]
