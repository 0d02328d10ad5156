"""The IVR, served to Asterisk over FastAGI."""
