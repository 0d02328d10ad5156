"""Email with the city's mail server: the mailbox read over IMAP (:mod:`mail.imap`),
mail parsed and made safe to show (:mod:`mail.parse`), mail sent over SMTP
(:mod:`mail.outgoing`).  Knows nothing of tickets or desks: the inbox decides."""
