"""Stand-ins for the services ghapp talks to, served on loopback for tests and the demo."""
