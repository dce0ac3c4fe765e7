"""Service configuration: settings from the environment, logging, default mapping."""
