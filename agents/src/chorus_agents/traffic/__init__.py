"""The traffic reference domain: signal controllers, transit dispatch, MCP server, data."""
