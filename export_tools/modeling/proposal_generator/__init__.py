"""Region proposal network."""
