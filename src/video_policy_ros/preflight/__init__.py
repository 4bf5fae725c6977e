"""`video-policy preflight`: the fault-injection suite, run against the sim twin with the user's own configuration."""
