"""The channel-neutral inbox: citizens' messages in and our answers out (SMS
today; email and voice messages join the same table)."""
