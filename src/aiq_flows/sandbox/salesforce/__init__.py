"""A local stand-in for Salesforce's REST API (the way the AIQ sandbox stands in for AIQ)."""
