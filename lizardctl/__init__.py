"""lizardctl: ingest traffic-camera dumps into canonical, reviewable cases."""

__version__ = "0.1.0"
