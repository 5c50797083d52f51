"""Live progress over WebSocket (seed 001): who listens to which job, and the
messages they get while it runs."""
