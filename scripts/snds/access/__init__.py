"""Access rights (habilitations): declarations, the plan that converges the database to them, the yearly review."""
