"""Models, agents and tools. Knows nothing of ChatKit: `service.chatkit` adapts to it."""
