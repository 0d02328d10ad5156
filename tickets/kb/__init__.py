"""The procedures knowledge base: how-to articles agents read to citizens (level 1)."""
