"""The customer service domain: a CRM, a knowledge base, an order system, MCP server, data."""
