"""A fake LLM provider for the end-to-end tests, one module per provider (wire family).

`server.py` is the HTTP server and its control API; each provider module registers the
paths it answers with `routes.route` and builds replies in that provider's own shapes.
`tests/fake_provider.py` is the entry point (library and script) and documents the controls.
"""
