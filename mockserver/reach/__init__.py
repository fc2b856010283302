"""Getting clients to the inspector: routed browsers and their DevTools client, Node
routing, the composer, a remote inspector, and verify's browser run.
"""
