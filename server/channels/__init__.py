"""Customer channels: the outbox (messages written with the change that sends them), their delivery through a
transport (SMTP, an SMS gateway, or the built-in capture mailbox), and what customers send back."""
