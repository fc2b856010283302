"""The lower pane's pages and their helpers: detail card, compare, opt-out check, timeline, route proof."""
