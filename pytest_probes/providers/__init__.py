"""Cluster providers: one module each (``local``, ``kind``, ``existing``)."""
