"""The composition root: settings, wiring and the ``pmo`` command."""
