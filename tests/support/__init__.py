"""What the tests share: refine's encoders, HTTP and journal clients, child processes (``serve``, Xvfb)."""
