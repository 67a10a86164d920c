"""The web UI served by the master under /ui (see README.md here and docs/web-ui.md)."""
