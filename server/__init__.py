"""pipewright: an automation engine for CRM pipelines."""
