"""Where alert transitions go: console, journal, alerts file (MQTT and phone/chat later)."""
