"""Pure renderers: result objects in, text or rich renderables out. No I/O here."""
