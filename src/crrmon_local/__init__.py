"""Local tooling for CRR Monitor: template reading, local provisioning, the emulator and the demo."""
