"""SMS through Kannel: its configuration and processes, the parts an SMS takes,
the sendsms client and what Kannel's calls to the application carry."""
