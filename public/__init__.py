"""The citizens' side of the hotline on the web: pages anyone may open without signing in."""
