"""The maintenance reference domain: a maintenance management system, its MCP server, data."""
