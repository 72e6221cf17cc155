"""The console's pages beside the admin's own: one view module per page or action."""
