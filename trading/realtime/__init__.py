"""Live updates for the pages: what the lower apps' signals become on the /ws/ groups."""
