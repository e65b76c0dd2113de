"""HTTP and ChatKit: routes, the ChatKit server, stores and attachment stores.

Knows nothing about model choice; it asks `service.agents` for agents and runs them.
"""
