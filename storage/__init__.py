"""Infrastructure for the stores: recorders that extend eventsourcing's, and URL parsing."""
