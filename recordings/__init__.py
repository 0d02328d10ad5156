"""Call recordings: how they are named and where they are stored."""
