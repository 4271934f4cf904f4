"""Router layer: Typer commands that parse, call one service and render."""
