"""The browser demo: an animator that encodes each photo once, and the page around it."""
