"""Database layer: engine factory, typed models, migrations."""
