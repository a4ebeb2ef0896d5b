"""The automation engine: stage runs, rule runs, timing, conditions, templates and actions."""
