"""Play the phone network against a running getpatter server, on this machine, with no account.

The simulator is a dev tool (demo, benchmarks, evals): it speaks the real Twilio protocols to the server
— a signed voice webhook, the Media Streams WebSocket, the REST calls the server makes to hang up or
transfer — so what it exercises is exactly what runs in production.
"""

from getpatter.simulator.call import SimulatedCall
from getpatter.simulator.twilio import CallRejected, PhoneSimulator

__all__ = ["CallRejected", "PhoneSimulator", "SimulatedCall"]
