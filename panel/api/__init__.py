"""The JSON API under ``/api/v1``: ``schemas`` (request bodies and answers), ``views`` (the
handlers), ``operations`` (each operation declared once, for the routes and the OpenAPI
document that ``openapi`` builds)."""
