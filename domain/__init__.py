"""The PMO domain: aggregates, their events, values, rejections and the application.

Pure: imports only the standard library and ``eventsourcing``.
"""
