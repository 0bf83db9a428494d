"""`ragvft synth`: a suite written from documents by a generator model, every question checked."""

from harness.synth.run import SynthResult, synthesize

__all__ = ["SynthResult", "synthesize"]
