"""The admin: server-rendered pages and htmx fragments over the services. No business logic here."""
