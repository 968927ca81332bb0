"""Test PKI modelled on Vietnam's (config.yml) and the WSGI wrapper that serves it."""
