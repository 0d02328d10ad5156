"""Notifications: what the hotline tells citizens (SMS, email) and agencies (email) by itself."""
