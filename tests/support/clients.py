"""Clients' addresses as they are stored: typed entries, first first."""


def work(*values: str) -> list[dict[str, str]]:
    """Email addresses or phone numbers of type work, for rows created directly in a test."""
    return [{"value": value, "type": "work"} for value in values]
