"""Projections: domain events in, read models (views) out. They never know their source."""
