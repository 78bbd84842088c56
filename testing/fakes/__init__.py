"""Local stand-ins for outside services, and launchers for the real ones tests run."""
