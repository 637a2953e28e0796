// Ordo's small scripts: confirmation before destructive actions.
