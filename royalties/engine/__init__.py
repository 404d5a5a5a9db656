"""The allocation engine: pure code over integers and frames. No Django, no ORM, no settings."""
