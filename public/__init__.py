"""The public side of the hotline, no sign-in: the status page and the portal of
completed reports (more route sets join them: the web report form, Open311).

Served on its own address or under the panel's (``public.path_prefix``); see
:mod:`public.app`.  It reads tickets (through :mod:`tickets.publication` for
anything listed) and never a citizen's name, phone, email or address, nor a
staff member's name.
"""
