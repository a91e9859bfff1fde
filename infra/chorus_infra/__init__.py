"""Pulumi components that provision the Chorus platform."""
