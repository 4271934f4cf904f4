"""Built-in camera-type schema files, registered like any user schema."""
