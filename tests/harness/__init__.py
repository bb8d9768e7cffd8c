"""Test harness: a real Mosquitto broker, an MQTT subscriber and a local chat-webhook receiver."""
