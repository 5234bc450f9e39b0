"""aiq-flows: the library beneath the Prefect flows.

Layers, each knowing only the ones below it:
domain (pure rules) -> gateway (AccountsIQ SOAP) / sources (CRM) / store (side-effect ledger)
-> sandbox (a local AccountsIQ for demos and tests, built on the gateway's interface definition).
"""

__version__ = "0.2.0"
