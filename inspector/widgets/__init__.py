"""The window's building blocks: the table view and its model, the empty state, theme, highlighting,
icons and the plain-text widget factories."""
