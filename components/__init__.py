"""runtime-defense components: one ComponentResource per concern."""
