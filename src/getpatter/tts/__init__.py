"""tts providers; see base.py for the interface."""
