"""Customer settings pages: the Marketo integration and each agent's Marketo configuration."""
