"""Where dataset files come from: package registries (npm, Debian) and the official download sites."""
