"""Alert delivery: the outbox, its per-channel workers, and the MQTT and Apprise transports."""
