"""The Open311 GeoReport v2 API: published reports for anyone, new reports with an API key."""
