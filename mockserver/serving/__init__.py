"""The HTTP(S) side: refine's endpoints and the journal API (Flask), the server, TLS, the journal guard
and the route probe.
"""
