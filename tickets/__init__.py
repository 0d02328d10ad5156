"""Citizens' reports (tickets), the agencies they are forwarded to, and their history."""
