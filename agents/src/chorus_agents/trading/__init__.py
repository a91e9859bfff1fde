"""The trading reference domain: a simulated exchange, its MCP server, agents and data."""
