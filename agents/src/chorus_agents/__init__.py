"""The Chorus agent runtime and the reference domain agents."""
