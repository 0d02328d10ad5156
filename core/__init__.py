"""The shared core: settings, database base and engine, clock, AMI client.

Imports nothing else of this project; every domain package may import it.
"""
