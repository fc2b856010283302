"""Getting clients to the inspector: routing flags, routed browsers and their DevTools client, Node
routing, the composer, a remote inspector, and verify's browser run.
"""
