"""Emulated kiosks: real WebRTC calls (aiortc) across a userspace emulation of an ADSL line."""
