"""Rules: safe compiled expressions over snapshot variables, and alert state machines."""
