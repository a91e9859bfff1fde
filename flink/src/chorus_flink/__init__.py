"""Chorus PyFlink jobs and their shared layer."""
