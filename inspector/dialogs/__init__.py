"""The window's dialogs: ports, routing help, about, export, the composer."""
