// Compiled only to produce the precompiled header that every target reuses.
