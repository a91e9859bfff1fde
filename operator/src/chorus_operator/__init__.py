"""The Chorus operator: reconciles Agent and Tool resources (kopf)."""
