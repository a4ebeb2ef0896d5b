"""Change contact: set fields of the element's first linked contact (a lead's contact, a deal's first one)."""

from server.rules.actions.change_company import ChangeContact

ACTION = ChangeContact()
