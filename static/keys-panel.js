// Placeholder: the API keys panel is written separately and replaces this file.
