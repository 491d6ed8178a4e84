"""The trust suite: proofs that nobody sees or changes what they should not, and that bad input
breaks nothing (issue 8)."""
