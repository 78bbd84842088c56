"""Specs of this family register themselves with executor.registry.register."""
