"""The ICU reference domain: an EHR, a bedside device gateway, their MCP server, vitals data."""
