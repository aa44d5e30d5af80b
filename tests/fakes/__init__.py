"""Fake vendor servers: real protocol, 127.0.0.1 only. Test hosts, never imported by the product."""
