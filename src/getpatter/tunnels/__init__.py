"""Ways to give the local server a public host that carriers can reach."""

from getpatter.tunnels.config import CloudflareTunnel, Ngrok, Static, StaticTunnel, TunnelConfig

__all__ = ["CloudflareTunnel", "Ngrok", "Static", "StaticTunnel", "TunnelConfig"]
